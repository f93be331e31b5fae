"""Feed discovery and validation: given a site's address or a feed's, find the feeds and check each once.

An address is fetched with the SSRF-guarded SafeClient (size limit, timeout). A feed (RSS, Atom,
JSON Feed) is parsed and described (title, entry count). An HTML page is searched for
`<link rel="alternate">` with a feed type; when it names none that works, the usual paths
(/feed, /rss.xml, /atom.xml ...) of the same site are tried. Each address that cannot be used
says why: not a feed, HTTP 404, an address the crawler never fetches, timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from lxml import etree
from lxml import html as lxml_html

from mediabeat.crawler.feeds import FeedParseError, FeedParseErrorKind, parse_feed
from mediabeat.crawler.http import FetchError, FetchErrorKind, FetchResult, SafeClient

FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
        "application/json",
        "application/rdf+xml",
        "application/xml",
        "text/xml",
    }
)
FALLBACK_PATHS = ("/feed", "/rss.xml", "/atom.xml", "/feed.xml", "/index.xml", "/rss", "/feed.json", "/feeds/all.rss")
# Most candidate links of one page that are checked: a page listing hundreds is not read through.
MAX_CANDIDATES = 20
ACCEPT = "application/rss+xml, application/atom+xml, application/feed+json, text/html;q=0.9, */*;q=0.5"


@dataclass(frozen=True, slots=True)
class FoundFeed:
    url: str
    title: str | None
    entries: int


@dataclass(frozen=True, slots=True)
class Refusal:
    url: str
    reason: str
    blocked: bool = False  # the guard refused the address: said even among the quiet fallback paths


@dataclass(slots=True)
class Discovery:
    """What an address led to: working feeds (in the site's order), and the addresses refused, with why."""

    address: str
    feeds: list[FoundFeed] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # further candidates, not fetched (first feed wanted)
    page_was_html: bool = False

    @property
    def reason(self) -> str:
        """Why nothing usable was found, in one line."""
        if self.refused and not self.page_was_html:
            return f"{self.refused[0].url}: {self.refused[0].reason}"
        tried = "; ".join(f"{r.url}: {r.reason}" for r in self.refused[:4])
        if tried:
            return f"no feed found at {self.address} (tried {tried})"
        paths = ", ".join(FALLBACK_PATHS[:5])
        return f"no feed found at {self.address}: the page links no feed, and none of {paths} ... is one"


def feed_links(page: bytes, base_url: str) -> list[str]:
    """The absolute URLs of an HTML page's `<link rel="alternate">` feeds, in page order, without repeats."""
    try:
        root = lxml_html.document_fromstring(page)
    except (etree.ParserError, ValueError):
        return []
    base = base_url
    for element in root.iter("base"):
        href = element.get("href")
        if href:
            base = urljoin(base_url, href.strip())
            break
    out: list[str] = []
    for link in root.iter("link"):
        rels = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").split(";", 1)[0].strip().lower()
        href = (link.get("href") or "").strip()
        if "alternate" in rels and kind in FEED_TYPES and href:
            url = urljoin(base, href)
            if url.startswith(("http://", "https://")) and url not in out:
                out.append(url)
    return out


def fallback_urls(address: str) -> list[str]:
    parts = urlsplit(address)
    root = f"{parts.scheme}://{parts.netloc}"
    return [root + path for path in FALLBACK_PATHS]


def _is_html(response: FetchResult) -> bool:
    head = response.body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return response.content_type in ("text/html", "application/xhtml+xml") or head.startswith(
        (b"<!doctype html", b"<html")
    )


class FeedFinder:
    """Finds and checks feeds through one SafeClient per call."""

    def __init__(self, client_factory: Callable[[], SafeClient]) -> None:
        self.client_factory = client_factory

    async def discover(self, address: str, *, want_all: bool = False) -> Discovery:
        """The feeds at `address`: itself when it is a feed, else those its page names, else the usual paths."""
        found = Discovery(address)
        async with self.client_factory() as client:
            response = await self._get(client, address, found)
            if response is None:
                return found
            feed = await self._as_feed(response, found)
            if feed is not None:
                found.feeds.append(feed)
                return found
            if not _is_html(response):
                return found
            found.page_was_html = True
            found.refused.clear()  # the page itself is not a feed: say what its links gave instead
            candidates = feed_links(response.body, response.url)[:MAX_CANDIDATES]
            await self._check(client, candidates, found, want_all=want_all)
            if not found.feeds:
                await self._check(client, fallback_urls(response.url), found, want_all=False, quiet=True)
        return found

    async def _check(
        self, client: SafeClient, urls: list[str], found: Discovery, *, want_all: bool, quiet: bool = False
    ) -> None:
        if want_all:
            results = await asyncio.gather(*(self._probe(client, url) for url in urls))
        else:
            results = []
            for position, url in enumerate(urls):
                result = await self._probe(client, url)
                results.append(result)
                if isinstance(result, FoundFeed):
                    found.unchecked.extend(urls[position + 1 :])
                    break
        for result in results:
            if isinstance(result, FoundFeed):
                if all(f.url != result.url for f in found.feeds):
                    found.feeds.append(result)
            elif not quiet or result.blocked:
                found.refused.append(result)

    async def _probe(self, client: SafeClient, url: str) -> FoundFeed | Refusal:
        probe = Discovery(url)
        response = await self._get(client, url, probe)
        if response is None:
            return probe.refused[0]
        feed = await self._as_feed(response, probe)
        return feed if feed is not None else probe.refused[0]

    @staticmethod
    async def _get(client: SafeClient, url: str, found: Discovery) -> FetchResult | None:
        try:
            response = await client.get(url, headers={"Accept": ACCEPT})
        except FetchError as exc:
            found.refused.append(Refusal(url, str(exc), blocked=exc.kind is FetchErrorKind.BLOCKED))
            return None
        if not 200 <= response.status < 300:
            found.refused.append(Refusal(url, f"HTTP {response.status}"))
            return None
        return response

    @staticmethod
    async def _as_feed(response: FetchResult, found: Discovery) -> FoundFeed | None:
        if _is_html(response):
            found.refused.append(Refusal(response.url, "not a feed (an HTML page)"))
            return None
        try:
            parsed = await asyncio.to_thread(
                parse_feed, response.body, url=response.url, content_type=response.content_type
            )
        except FeedParseError as exc:
            # The parser's reason says "not a (readable) feed" itself, but for an empty body.
            reason = f"not a feed ({exc})" if exc.kind is FeedParseErrorKind.EMPTY else str(exc)
            found.refused.append(Refusal(response.url, reason))
            return None
        return FoundFeed(url=response.url, title=parsed.title, entries=len(parsed.entries))
