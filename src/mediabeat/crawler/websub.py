"""WebSub's pure parts: finding a feed's hub, checking a pushed body's signature, reading a hub's GET.

No I/O and no clock: the callers fetch, store and decide when. References are to the W3C
Recommendation "WebSub" (23 January 2018).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from lxml import etree

from mediabeat.domain.websub import SIGNATURE_METHODS, HubLinks, PushRefusal

ATOM_LINK = "{http://www.w3.org/2005/Atom}link"
# Only the head of a feed carries its links; a hub link after this many bytes is not looked for.
DISCOVERY_BYTES = 64 * 1024
_LINK_VALUE = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_PARAM = re.compile(r";\s*([a-zA-Z*]+)\s*=\s*(\"[^\"]*\"|[^;,\s]*)")
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=True, remove_comments=True
)


def link_header_rels(value: str | None, base: str) -> dict[str, str]:
    """The first absolute URL of each rel in an HTTP Link header (RFC 8288), resolved against `base`."""
    found: dict[str, str] = {}
    for match in _LINK_VALUE.finditer(value or ""):
        target, params = match.group(1).strip(), match.group(2)
        for name, raw in _PARAM.findall(params):
            if name.lower() != "rel":
                continue
            for rel in raw.strip('"').lower().split():
                url = _absolute(target, base)
                if url and rel not in found:
                    found[rel] = url
    return found


def discover_hub(body: bytes, link_header: str | None, url: str) -> HubLinks | None:
    """The hub and self URL a feed advertises (WebSub 4): Link header first, then the feed's own links."""
    rels = link_header_rels(link_header, url)
    if "hub" not in rels and b"hub" in body[:DISCOVERY_BYTES]:
        for rel, href in _feed_links(body[:DISCOVERY_BYTES] if len(body) > DISCOVERY_BYTES else body):
            resolved = _absolute(href, url)
            if resolved and rel in ("hub", "self"):
                rels.setdefault(rel, resolved)
    hub = rels.get("hub")
    return HubLinks(hub=hub, self_url=rels.get("self")) if hub else None


def _feed_links(body: bytes) -> list[tuple[str, str]]:
    """(rel, href) of the atom:link elements of an Atom feed or an RSS channel, in order."""
    try:
        root: Any = etree.fromstring(body, parser=_PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return []
    if root is None:
        return []
    holder = root.find("channel") if root.tag == "rss" else root
    if holder is None:
        return []
    links: list[tuple[str, str]] = []
    for link in holder:
        if link.tag == ATOM_LINK and link.get("href"):
            for rel in (link.get("rel") or "").lower().split():
                links.append((rel, str(link.get("href"))))
    return links


def _absolute(href: str, base: str) -> str | None:
    url = urljoin(base, href.strip())
    return url if url.startswith(("http://", "https://")) else None


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """Whether a pushed body is signed with the subscription's secret; `refusal` says why not."""

    refusal: PushRefusal | None
    reason: str | None = None

    @property
    def valid(self) -> bool:
        return self.refusal is None


def check_signature(secret: str, body: bytes, header: str | None) -> SignatureCheck:
    """WebSub 8: X-Hub-Signature is `method=hex HMAC of the raw body, keyed with hub.secret`."""
    if not header:
        return SignatureCheck(PushRefusal.NO_SIGNATURE, "no X-Hub-Signature header: a body we cannot trust")
    method, _, signature = header.strip().partition("=")
    digest = SIGNATURE_METHODS.get(method.strip().lower())
    if digest is None:
        return SignatureCheck(
            PushRefusal.WEAK_SIGNATURE, f"signature method {method[:20]!r} refused: sha256, sha384 or sha512"
        )
    expected = hmac.new(secret.encode("utf-8"), body, digest).hexdigest()
    if not hmac.compare_digest(expected, signature.strip().lower()):
        return SignatureCheck(PushRefusal.BAD_SIGNATURE, "X-Hub-Signature does not match the body: forged or altered")
    return SignatureCheck(None)


@dataclass(frozen=True, slots=True)
class HubRequest:
    """A hub's GET to our callback (WebSub 5.3 verification, 5.2 denial), as read from its query."""

    mode: str
    topic: str
    challenge: str | None
    lease_seconds: int | None
    reason: str | None


def read_hub_request(query: Mapping[str, str]) -> HubRequest | None:
    """The hub's request, or None when the query is not one (no hub.mode or no hub.topic)."""
    mode = (query.get("hub.mode") or "").strip().lower()
    topic = (query.get("hub.topic") or "").strip()
    if mode not in ("subscribe", "unsubscribe", "denied") or not topic:
        return None
    challenge = query.get("hub.challenge")
    if mode != "denied" and not challenge:
        return None
    lease_text = (query.get("hub.lease_seconds") or "").strip()
    lease = int(lease_text) if lease_text.isdigit() and len(lease_text) < 10 else None
    reason = query.get("hub.reason")
    return HubRequest(mode, topic, challenge, lease, reason[:500] if reason else None)
