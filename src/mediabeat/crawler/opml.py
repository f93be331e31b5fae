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


# libxml2's error codes, in words a person who exported the file from a feed reader can act on.
_E = etree.ErrorTypes
SYNTAX_PROBLEMS = {
    _E.ERR_DOCUMENT_EMPTY: "it does not start with an XML tag (is it an OPML file, not a web page or text?)",
    _E.ERR_DOCUMENT_END: "there is more after the end of the document (after </opml>)",
    _E.ERR_TAG_NAME_MISMATCH: "an end tag does not match the element it closes (one above it left open?)",
    _E.ERR_TAG_NOT_FINISHED: "the file ends before its elements are closed (was it cut short?)",
    _E.ERR_LTSLASH_REQUIRED: "the file ends before its elements are closed (was it cut short?)",
    _E.ERR_ENTITYREF_SEMICOL_MISSING: "an & that does not start an entity (write &amp; in URLs and titles)",
    _E.ERR_ENTITYREF_NO_NAME: "an & that does not start an entity (write &amp; in URLs and titles)",
    _E.ERR_UNDECLARED_ENTITY: "an entity that XML does not know, such as &nbsp; (write the character itself)",
    _E.ERR_ATTRIBUTE_REDEFINED: "an element has the same attribute twice",
    _E.ERR_ATTRIBUTE_WITHOUT_VALUE: "an attribute has no quoted value",
    _E.ERR_ATTRIBUTE_NOT_STARTED: "an attribute has no quoted value",
    _E.ERR_ATTRIBUTE_NOT_FINISHED: "an attribute's value has no closing quote",
    _E.ERR_LT_IN_ATTRIBUTE: "an attribute's value has a < in it (write &lt;)",
    _E.ERR_INVALID_ENCODING: "it has bytes that are not text in its encoding (save it as UTF-8)",
    _E.ERR_INVALID_CHAR: "it has a character that XML does not allow",
    _E.ERR_UNSUPPORTED_ENCODING: "it declares an encoding that is not supported (save it as UTF-8)",
    _E.ERR_GT_REQUIRED: "a tag is not closed with >",
    _E.ERR_NAME_REQUIRED: "a tag has no name (a < that starts no tag? write &lt;)",
}


def syntax_problem(exc: etree.XMLSyntaxError) -> str:
    """What is wrong with a file that is not well-formed XML, in one sentence with the line (lxml's own
    text quotes libxml2: "Opening and ending tag mismatch: outline line 5 and body, line 6, column 8")."""
    what = SYNTAX_PROBLEMS.get(exc.code, "it is not well-formed XML")
    line = exc.lineno if isinstance(exc.lineno, int) and exc.lineno > 0 else None
    return f"the OPML file cannot be read: {what}" + (f", on line {line}" if line else "")


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
        raise OpmlError(syntax_problem(exc)) from None
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
