"""News sitemaps (Google's `<news:news>` extension of sitemaps.org), parsed within bounds. Pure: no I/O.

A news sitemap is a `<urlset>` whose `<url>` entries carry `<news:news>` (a publication date,
a title); a `<sitemapindex>` lists child sitemaps. Only the entries with `<news:news>` count: a
plain sitemap lists the whole site, which is not news. Bounds: the body's size, the entries read
and the children listed (the caller also bounds how deep it follows indexes and how many
children it fetches, see `SitemapLimits`). A body over a bound is cut there with a warning,
never read whole.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lxml import etree

SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
NEWS_NS = "{http://www.google.com/schemas/sitemap-news/0.9}"


class SitemapError(ValueError):
    """The body is no sitemap (or not one we can read); the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class SitemapLimits:
    """How much of a sitemap (and of an index's children) is read."""

    max_bytes: int = 10 * 1024 * 1024  # sitemaps.org allows 50 MB; a news sitemap holds two days of news
    max_entries: int = 5_000  # Google News reads at most 1,000 per news sitemap
    max_children: int = 50  # child sitemaps taken from one index
    max_depth: int = 2  # an index of indexes, at most: deeper nesting is a sitemap bomb


@dataclass(frozen=True, slots=True)
class NewsEntry:
    url: str
    title: str | None
    published_at: datetime | None


@dataclass
class ParsedSitemap:
    """A urlset's news entries, or an index's child sitemaps; `warnings` say what was cut or skipped."""

    kind: str  # "urlset" or "index"
    entries: list[NewsEntry] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    skipped_plain: int = 0  # <url> entries without <news:news>
    warnings: list[str] = field(default_factory=list)


_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False, remove_comments=True
)


def looks_like_sitemap(body: bytes) -> bool:
    """Whether the body is probably a sitemap: gzipped, or <urlset> / <sitemapindex> in its head (a cheap look)."""
    head = body[:2048]
    return head[:2] == b"\x1f\x8b" or b"<urlset" in head or b"<sitemapindex" in head


def gunzipped(body: bytes, max_bytes: int) -> bytes:
    """A `.xml.gz` sitemap's XML (served gzipped as a file, not as a Content-Encoding), at most `max_bytes`."""
    if body[:2] != b"\x1f\x8b":
        return body
    inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        data = inflate.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise SitemapError(f"broken gzip: {exc}") from None
    if len(data) > max_bytes:
        raise SitemapError(f"sitemap larger than {max_bytes} bytes once decompressed")
    return data


def parse_sitemap(body: bytes, limits: SitemapLimits = SitemapLimits()) -> ParsedSitemap:
    """Read a sitemap or sitemap index (gzipped or not) within `limits`; SitemapError when it is neither."""
    body = gunzipped(body, limits.max_bytes)
    if len(body) > limits.max_bytes:
        raise SitemapError(f"sitemap larger than {limits.max_bytes} bytes")
    try:
        root: Any = etree.fromstring(body, parser=_PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise SitemapError(
            f"not readable XML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    if root is None or not isinstance(root.tag, str):
        raise SitemapError("empty document")
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        # Never expanded (resolve_entities=False), but a sitemap has no use for them: say so instead.
        raise SitemapError("entity declarations refused: a sitemap has no use for them (an entity bomb?)")
    if root.tag == f"{SITEMAP_NS}sitemapindex":
        return _index(root, limits)
    if root.tag == f"{SITEMAP_NS}urlset":
        return _urlset(root, limits)
    raise SitemapError(f"root element {etree.QName(root).localname!r} is neither urlset nor sitemapindex")


def _index(root: Any, limits: SitemapLimits) -> ParsedSitemap:
    out = ParsedSitemap("index")
    for child in root.iterfind(f"{SITEMAP_NS}sitemap"):
        loc = _http(child.findtext(f"{SITEMAP_NS}loc"))
        if loc is None:
            continue
        if len(out.children) >= limits.max_children:
            out.warnings.append(f"index lists more than {limits.max_children} sitemaps: the rest are not read")
            break
        out.children.append(loc)
    return out


def _urlset(root: Any, limits: SitemapLimits) -> ParsedSitemap:
    out = ParsedSitemap("urlset")
    for url in root.iterfind(f"{SITEMAP_NS}url"):
        news = url.find(f"{NEWS_NS}news")
        loc = _http(url.findtext(f"{SITEMAP_NS}loc"))
        if loc is None:
            continue
        if news is None:
            out.skipped_plain += 1
            continue
        if len(out.entries) >= limits.max_entries:
            out.warnings.append(f"more than {limits.max_entries} news entries: the rest are not read")
            break
        title = (news.findtext(f"{NEWS_NS}title") or "").strip() or None
        published = _w3c_date(news.findtext(f"{NEWS_NS}publication_date"))
        out.entries.append(NewsEntry(loc, title[:500] if title else None, published))
    return out


def _http(value: str | None) -> str | None:
    text = (value or "").strip()
    return text if text.startswith(("http://", "https://")) and len(text) <= 2048 else None


def _w3c_date(value: str | None) -> datetime | None:
    """A W3C datetime (`2026-12-03`, `2026-12-03T10:00:00+01:00`, `...Z`) in UTC; None when unreadable."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def robots_sitemaps(robots_txt: str, *, limit: int = 50) -> list[str]:
    """The `Sitemap:` URLs of a robots.txt (any group, case-insensitive field name), at most `limit`."""
    found: list[str] = []
    for line in robots_txt.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == "sitemap":
            url = _http(value.split("#", 1)[0])
            if url and url not in found:
                found.append(url)
                if len(found) >= limit:
                    break
    return found
