"""OPML import and export: how RSS users move their feed lists between readers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from lxml import etree

MAX_OPML_BYTES = 10 * 1024 * 1024


class OpmlError(ValueError):
    """The file is not usable OPML; the message says why."""


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    url: str
    title: str | None = None


def _parser() -> etree.XMLParser:
    # No DTDs, no entity expansion, no network: an OPML file cannot read files or make requests.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False, recover=False
    )


def parse_opml(data: bytes) -> list[OpmlFeed]:
    """The feeds (outlines with an xmlUrl) of an OPML document, in document order, without duplicates."""
    if not data or not data.strip():
        raise OpmlError("the OPML file is empty")
    if len(data) > MAX_OPML_BYTES:
        raise OpmlError(f"the OPML file is larger than {MAX_OPML_BYTES // (1024 * 1024)} MB")
    if b"<!ENTITY" in data[:4096].upper():
        raise OpmlError("the OPML file declares entities, which are not allowed")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise OpmlError(f"the OPML file is not well-formed XML: {exc}") from None
    if not isinstance(root.tag, str) or root.tag.lower() != "opml":
        raise OpmlError(f"not an OPML document (the root element is <{root.tag}>, not <opml>)")
    body = root.find("body")
    if body is None:
        raise OpmlError("the OPML document has no <body>")
    feeds: list[OpmlFeed] = []
    seen: set[str] = set()
    for outline in body.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if not url or url in seen:
            continue
        seen.add(url)
        title = (outline.get("title") or outline.get("text") or "").strip() or None
        feeds.append(OpmlFeed(url=url, title=title))
    return feeds


def render_opml(feeds: Iterable[OpmlFeed], *, title: str, now: datetime | None = None) -> bytes:
    """An OPML 2.0 document listing the feeds."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "dateCreated").text = format_datetime(now or datetime.now(UTC), usegmt=True)
    body = etree.SubElement(root, "body")
    for feed in feeds:
        label = feed.title or feed.url
        etree.SubElement(body, "outline", type="rss", text=label, title=label, xmlUrl=feed.url)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
