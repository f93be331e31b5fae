"""What a request goes to: an absolute http(s) URL, its IP literal when it is one, and its limiter key."""

from __future__ import annotations

import ipaddress

from yarl import URL

from mediabeat.crawler.http.errors import FetchError, FetchErrorKind


def http_url(url: str) -> URL:
    """`url` parsed, if it is an absolute http(s) URL with a host; FetchError(BAD_URL) otherwise."""
    try:
        target = URL(url)
        port = target.port  # yarl checks the port only when asked
    except (ValueError, TypeError) as exc:
        raise FetchError(FetchErrorKind.BAD_URL, f"not a valid URL: {url} ({exc})") from None
    if target.scheme not in ("http", "https") or not target.raw_host or port is None:
        raise FetchError(FetchErrorKind.BAD_URL, f"not an http(s) URL: {url}")
    return target


def host_key(target: URL) -> str:
    """The limiter's key: host and port, the port spelled out even when it is the scheme's default."""
    return f"{(target.raw_host or '').lower()}:{target.port}"


def is_ip_literal(host: str) -> bool:
    """Whether aiohttp takes `host` for an address and connects to it without asking the resolver.

    This is aiohttp's own test (a colon, or only digits and dots), so nothing it connects to
    unresolved escapes the guard.
    """
    return ":" in host or host.replace(".", "").isdigit()


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address an IP-literal host names; FetchError(BAD_URL) for forms the guard cannot vet."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        # Legacy forms such as 127.1 or 2130706433 would reach an address the guard never saw.
        raise FetchError(FetchErrorKind.BAD_URL, f"{host} is not an IP address in a form the crawler accepts") from None
