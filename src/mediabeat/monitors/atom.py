"""A monitor's matches as an Atom 1.0 feed (RFC 4287), built with ElementTree so every text is escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime

from mediabeat.domain.monitors import MonitorMatch, MonitorRecord
from mediabeat.domain.text import clean_text

ATOM = "http://www.w3.org/2005/Atom"
FEED_SIZE = 50


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def _text(parent: ET.Element, tag: str, value: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attributes)
    element.text = _xml_safe(value)
    return element


def _xml_safe(value: str) -> str:
    """Text XML 1.0 can carry: control characters other than tab and newlines are dropped."""
    cleaned = clean_text(value)
    return "".join(c for c in cleaned if c in "\t\n\r" or (ord(c) >= 0x20 and not 0xFFFE <= ord(c) <= 0xFFFF))


def render_feed(monitor: MonitorRecord, matches: Sequence[MonitorMatch], *, self_url: str, now: datetime) -> bytes:
    """The feed document: one entry per match, newest first; its id is stable per monitor and article."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, "id", f"urn:mediabeat:monitor:{monitor.id}")
    _text(feed, "title", f"MediaBeat monitor: {monitor.name}")
    _text(feed, "subtitle", monitor.query)
    updated = matches[0].matched_at if matches else monitor.updated_at
    _text(feed, "updated", _stamp(updated or now))
    ET.SubElement(feed, f"{{{ATOM}}}link", {"rel": "self", "href": _xml_safe(self_url)})
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", "MediaBeat")
    for match in matches:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        _text(entry, "id", f"urn:mediabeat:monitor:{monitor.id}:article:{match.article_id}")
        _text(entry, "title", match.title or match.url)
        ET.SubElement(entry, f"{{{ATOM}}}link", {"rel": "alternate", "href": _xml_safe(match.url)})
        _text(entry, "updated", _stamp(match.matched_at))
        if match.published_at is not None:
            _text(entry, "published", _stamp(match.published_at))
        if match.summary:
            _text(entry, "summary", match.summary[:2000])
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document
