"""Canonical article and feed URLs: one spelling per page, so dedup works."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "yclid",
        "igshid",
        "_ga",
        "_gl",
        "ref_src",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "__s",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "piwik_", "mtm_", "stm_")
DEFAULT_PORTS = {"http": 80, "https": 443}
# URLs that are canonical as written: lower-case scheme and ASCII host (no trailing dot), a port
# that is not the default, a path of characters quote() leaves alone, no query, user or fragment.
# Most article links in feeds look like this; they skip the parsing below.
_ALREADY_CANONICAL = re.compile(
    r"(?P<scheme>https?)://[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::(?P<port>[1-9][0-9]{0,4}))?/[A-Za-z0-9/:@!$&'()*+,;=._~-]*"
)


class BadUrl(ValueError):
    """Not an absolute http(s) URL."""


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def canonicalize(url: str) -> str:
    """The canonical form of an http(s) URL.

    Lower-case scheme and host (IDNA for non-ASCII hosts), no default port, no fragment,
    no tracking parameters (utm_*, fbclid, gclid, ...), "/" for an empty path, and the
    remaining query parameters kept in their order. Raises BadUrl for anything else.
    """
    plain = _ALREADY_CANONICAL.fullmatch(url)
    if plain is not None:
        port = plain["port"]
        if port is None or (int(port) <= 65535 and int(port) != DEFAULT_PORTS[plain["scheme"]]):
            return url
    return _canonicalize(url)


def _canonicalize(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise BadUrl(f"bad URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BadUrl(f"not an http(s) URL: {url!r}")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise BadUrl(f"URL without a host: {url!r}")
    if host.isascii():
        host = host.lower()  # the IDNA codec leaves ASCII labels as they are: skip its cost
    else:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            host = host.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    if parts.username:
        userinfo = parts.username + (f":{parts.password}" if parts.password else "")
        netloc = f"{userinfo}@{netloc}"
    path = quote(parts.path, safe="/:@!$&'()*+,;=-._~%") or "/"
    query = ""
    if parts.query:
        query_pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)]
        query = urlencode(query_pairs, doseq=True)
    return urlunsplit((scheme, netloc, path, query, ""))


def article_canonical_url(declared: str | None, fetched: str) -> str:
    """Where an article lives: the URL the page declares (rel=canonical, og:url) if it is on the
    page's own site, else the URL it was fetched from after redirects; canonicalised.

    A declaration pointing at another site is ignored: a page cannot claim someone else's URL.
    """
    try:
        final = canonicalize(fetched)
    except BadUrl:
        return fetched
    if declared:
        try:
            claimed = canonicalize(urljoin(fetched, declared.strip()))
        except BadUrl:
            return final
        if _site(claimed) == _site(final):
            return claimed
    return final


def _site(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")


def url_hash(canonical_url: str) -> str:
    """The per-org dedup key of a canonical URL."""
    return hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()
