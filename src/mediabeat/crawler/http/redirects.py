"""Where a redirect goes, decided without I/O: the client asks, then carries the answer out.

Like httpx's `_build_redirect_request`: given the response and where we are, return the next
request, None when the response is final, or a refusal the client raises as a FetchError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from mediabeat.crawler.http.errors import FetchErrorKind

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})


@dataclass(frozen=True, slots=True)
class RedirectRequest:
    """The next hop: its URL and method, and the status that sent us there."""

    url: str
    method: str
    status: int


@dataclass(frozen=True, slots=True)
class RedirectRefusal:
    """A redirect the client will not follow."""

    kind: FetchErrorKind
    message: str


def next_redirect(
    *,
    status: int,
    headers: Mapping[str, str],
    url: str,
    method: str,
    hops: int,
    max_redirects: int,
    seen: frozenset[str],
) -> RedirectRequest | RedirectRefusal | None:
    """Where the response to `method url` sends us after `hops` redirects; None if it is final.

    `seen` holds the URLs already requested. A redirect back to one of them is a loop, except
    the first hop's (a page that sets a cookie and redirects to itself).
    """
    location = headers.get("location")
    if status not in REDIRECT_STATUSES or not location:
        return None
    try:
        target = urljoin(url, location.strip())
        scheme = urlsplit(target).scheme
    except ValueError:
        return RedirectRefusal(FetchErrorKind.BAD_URL, f"unreadable redirect Location {location!r} from {url}")
    if scheme not in ("http", "https"):
        return RedirectRefusal(FetchErrorKind.BAD_URL, f"redirect from {url} to a non-http(s) URL: {target}")
    if target in seen and hops >= 1:
        return RedirectRefusal(FetchErrorKind.REDIRECT_LOOP, f"redirect loop at {target}")
    if hops >= max_redirects:
        return RedirectRefusal(FetchErrorKind.TOO_MANY_REDIRECTS, f"more than {max_redirects} redirects")
    return RedirectRequest(url=target, method=_redirect_method(status, method), status=status)


def _redirect_method(status: int, method: str) -> str:
    """RFC 9110 section 15.4: 303 turns anything but HEAD into GET; so do 301/302 for POST, as browsers do."""
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method
