"""The one HTTP client every crawler request goes through, built on aiohttp.

It connects only to addresses the SSRF guard has vetted (names through the connector's
resolver, IP literals before the request); has connect, read and total timeouts; follows
redirects itself (so every hop passes the guard again and the caller learns whether they
were permanent); caps the body on the bytes it decompresses itself (a gzip bomb stops at
the limit); sends our User-Agent and never uses a proxy from the environment; and keeps
per-host concurrency and spacing, backing off (with jitter, and honouring Retry-After
within a bound) when a host answers 429 or 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import random
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import aiohttp
import certifi
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from mediabeat.crawler.netguard import BlockedAddress, IPNetwork, NetGuard
from mediabeat.settings import Settings

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
BACKOFF_STATUSES = frozenset({429, 503})
# A robots.txt Crawl-delay is honoured up to this: a longer one would hold a whole run on one host.
MAX_CRAWL_DELAY_S = 10.0
# A redirect body up to this size is read (and dropped) so its connection can be reused.
SMALL_BODY_BYTES = 64 * 1024
# aiohttp's default of 8 KB per header line refuses the long Content-Security-Policy and
# Set-Cookie lines some real sites send; 16 KB still bounds what a hostile server makes us buffer.
MAX_HEADER_LINE_BYTES = 16 * 1024
KEEPALIVE_SECONDS = 5.0


class FetchError(Exception):
    """A request that produced no usable response. `kind` is a short machine-readable cause."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class ClientConfig:
    user_agent: str
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 30.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    per_host_concurrency: int = 8
    per_host_delay: float = 0.0
    max_retries: int = 2
    max_retry_wait: float = 10.0
    allow_loopback: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientConfig:
        agent = settings.crawler_user_agent
        if settings.crawler_contact_url and settings.crawler_contact_url not in agent:
            agent = f"{agent} (+{settings.crawler_contact_url})"
        return cls(
            user_agent=agent,
            connect_timeout=settings.crawler_connect_timeout,
            read_timeout=settings.crawler_read_timeout,
            total_timeout=settings.crawler_total_timeout,
            max_body_bytes=settings.crawler_max_body_bytes,
            max_redirects=settings.crawler_max_redirects,
            per_host_concurrency=settings.crawler_per_host_concurrency,
            per_host_delay=settings.crawler_per_host_delay,
            max_retry_wait=settings.crawler_max_retry_wait,
            allow_loopback=settings.crawler_allow_private_networks,
            allowed_networks=settings.crawler_allowed_network_ranges,
        )


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A final (non-redirect) response with its body read, and the redirects that led to it."""

    requested_url: str
    url: str
    status: int
    headers: Mapping[str, str]  # case-insensitive: .get("etag") finds "ETag"
    body: bytes
    redirects: tuple[tuple[int, str], ...] = ()

    @property
    def permanent_url(self) -> str | None:
        """The new URL when every redirect on the way was permanent (301/308); None otherwise."""
        if self.redirects and all(status in PERMANENT_REDIRECTS for status, _ in self.redirects):
            return self.url
        return None

    @property
    def content_type(self) -> str:
        return str(self.headers.get("content-type", "")).split(";", 1)[0].strip().lower()


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, through the guard: the connector only ever sees addresses it vetted.

    aiohttp does not ask the resolver about IP literals; SafeClient vets those itself.
    """

    def __init__(self, guard: NetGuard) -> None:
        self.guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self.guard.resolve(host, port)
        return [
            ResolveResult(
                hostname=host,
                host=ip,
                port=port,
                family=socket.AF_INET6 if ":" in ip else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for ip in addresses
        ]

    async def close(self) -> None:
        return None


class HostLimiter:
    """At most `concurrency` requests per host at once, starts at least `delay` apart (or the host's
    own Crawl-delay, when longer), and cool-downs.

    One limiter serves every run of a process, so two tasks crawling one host share its limits.
    """

    def __init__(self, *, concurrency: int, delay: float) -> None:
        self.concurrency = concurrency
        self.delay = delay
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._next_start: dict[str, float] = {}
        self._delays: dict[str, float] = {}

    def set_delay(self, host: str, seconds: float) -> None:
        """Start requests to `host` at least `seconds` apart (its robots.txt Crawl-delay)."""
        self._delays[host] = seconds

    def cool_down(self, host: str, seconds: float) -> None:
        """No new request to `host` starts for `seconds` (it asked us to slow down)."""
        until = asyncio.get_running_loop().time() + seconds
        self._next_start[host] = max(self._next_start.get(host, 0.0), until)

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        semaphore = self._slots.setdefault(host, asyncio.Semaphore(self.concurrency))
        async with semaphore:
            loop = asyncio.get_running_loop()
            while True:
                now = loop.time()
                start = max(now, self._next_start.get(host, 0.0))
                if start <= now:
                    break
                await asyncio.sleep(start - now)
            self._next_start[host] = now + max(self.delay, self._delays.get(host, 0.0))
            yield


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class _Body:
    limit: int
    data: bytearray = field(default_factory=bytearray)

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > self.limit:
            raise FetchError("too_large", f"body larger than {self.limit} bytes")


class SafeClient:
    """Use as `async with SafeClient(config) as client: result = await client.get(url)`.

    The aiohttp session is made on first use (it needs the running loop) and closed by aclose().
    """

    def __init__(self, config: ClientConfig, *, limiter: HostLimiter | None = None) -> None:
        self.config = config
        self.guard = NetGuard(allow_loopback=config.allow_loopback, allowed_networks=config.allowed_networks)
        self.limiter = limiter or HostLimiter(concurrency=config.per_host_concurrency, delay=config.per_host_delay)
        self._session: aiohttp.ClientSession | None = None

    def _session_for_requests(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = self._new_session()
        return self._session

    def _new_session(self) -> aiohttp.ClientSession:
        config = self.config
        # The connector's resolver is where the guard sits: every connection, on every redirect
        # hop and every retry, is made to an address the guard has vetted (its DNS cache, 10 s,
        # holds only vetted answers). A TCPConnector never opens a unix socket. Limits are the
        # HostLimiter's job, so the connector's own are off.
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.guard),
            ssl=_ssl_context(),
            limit=0,
            limit_per_host=0,
            keepalive_timeout=KEEPALIVE_SECONDS,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=config.connect_timeout, sock_read=config.read_timeout
            ),
            headers={"User-Agent": config.user_agent, "Accept-Encoding": "gzip, deflate"},
            # Cookies a site sets are sent back to it within this client's life, as browsers do;
            # unsafe=True keeps them for hosts given as IP addresses too.
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            auto_decompress=False,
            trust_env=False,
            max_line_size=MAX_HEADER_LINE_BYTES,
            max_field_size=MAX_HEADER_LINE_BYTES,
        )

    async def __aenter__(self) -> SafeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> FetchResult:
        """GET `url`, following up to max_redirects redirects; raises FetchError when no usable response came."""
        try:
            async with asyncio.timeout(self.config.total_timeout):
                return await self._get(url, dict(headers or {}))
        except TimeoutError:
            raise FetchError("timeout", f"no complete response within {self.config.total_timeout:g} s") from None

    async def _get(self, url: str, headers: dict[str, str]) -> FetchResult:
        redirects: list[tuple[int, str]] = []
        current = url
        seen = {url}
        for _hop in range(self.config.max_redirects + 1):
            status, response_headers, body = await self._with_backoff(current, headers)
            location = response_headers.get("location")
            if status in REDIRECT_STATUSES and location:
                try:
                    target = urljoin(current, location.strip())
                except ValueError:
                    raise FetchError("bad_url", f"unreadable redirect Location {location!r} from {current}") from None
                if target in seen and len(redirects) >= 1:
                    raise FetchError("redirect_loop", f"redirect loop at {target}")
                seen.add(target)
                redirects.append((status, target))
                current = target
                continue
            return FetchResult(
                requested_url=url,
                url=current,
                status=status,
                headers=response_headers,
                body=body,
                redirects=tuple(redirects),
            )
        raise FetchError("too_many_redirects", f"more than {self.config.max_redirects} redirects")

    def respect_crawl_delay(self, url: str, seconds: float) -> None:
        """Space the requests to `url`'s host as its robots.txt asks, up to MAX_CRAWL_DELAY_S."""
        try:
            host = _host_key(_http_url(url))
        except FetchError:
            return
        self.limiter.set_delay(host, min(max(seconds, 0.0), MAX_CRAWL_DELAY_S))

    async def _with_backoff(self, url: str, headers: dict[str, str]) -> tuple[int, Mapping[str, str], bytes]:
        target = _http_url(url)
        host = _host_key(target)
        attempt = 0
        while True:
            status, response_headers, body = await self._once(target, host, headers)
            if status not in BACKOFF_STATUSES or attempt >= self.config.max_retries:
                return status, response_headers, body
            asked = retry_after_seconds(response_headers.get("retry-after"))
            wait = asked if asked is not None else 0.5 * (2**attempt)
            wait *= random.uniform(1.0, 1.25)  # jitter, never shorter than asked
            if wait > self.config.max_retry_wait:
                return status, response_headers, body  # it wants us away longer than we wait in one run
            self.limiter.cool_down(host, wait)
            attempt += 1

    async def _once(self, target: URL, host: str, headers: dict[str, str]) -> tuple[int, Mapping[str, str], bytes]:
        # `target` is the very URL object aiohttp connects to, so the host vetted is the host used.
        hostname = target.raw_host or ""
        async with self.limiter.slot(host):
            try:
                if _is_ip_literal(hostname):
                    self.guard.check_ip(hostname, _ip_address(hostname))
                session = self._session_for_requests()
                async with session.get(target, headers=headers, allow_redirects=False) as response:
                    status = response.status
                    if status == 304 or (status in REDIRECT_STATUSES and _small_body(response.headers)):
                        # Read the (empty or small) body to its end so the connection goes back to the
                        # pool: left unread, it would be closed and the next request would connect again.
                        await self._read(response)
                        return status, response.headers, b""
                    if status in REDIRECT_STATUSES:
                        return status, response.headers, b""
                    return status, response.headers, await self._read(response)
            except BlockedAddress as exc:
                raise FetchError("blocked", str(exc)) from None
            except TimeoutError as exc:
                raise FetchError("timeout", f"{type(exc).__name__} from {hostname}") from None
            except aiohttp.InvalidURL as exc:
                raise FetchError("bad_url", f"invalid URL {target}: {exc}") from None
            except aiohttp.ClientResponseError as exc:
                # Raised while parsing: the server's answer is not valid HTTP/1.1.
                raise FetchError("network", f"malformed HTTP response: {_one_line(exc.message)} ({hostname})") from None
            except aiohttp.ClientConnectorError as exc:
                # Its own text reads "[None]" when the cause (the guard's "cannot resolve") has no errno.
                cause = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
                raise FetchError("network", f"cannot connect to {hostname}:{target.port}: {cause}") from None
            except (aiohttp.ClientError, OSError, zlib.error) as exc:
                message = _one_line(str(exc)) or type(exc).__name__
                raise FetchError("network", f"{message} ({hostname})") from None
            except ValueError as exc:
                # aiohttp refuses to send a header value with control characters (header injection).
                raise FetchError("network", f"request not sent: {_one_line(str(exc))} ({hostname})") from None

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self.config.max_body_bytes
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise FetchError("too_large", f"body of {declared} bytes is larger than {limit} bytes")
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        decoder: Any
        if encoding in ("", "identity"):
            decoder = None
        elif encoding in ("gzip", "x-gzip"):
            decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            decoder = _DeflateDecoder()
        else:
            raise FetchError("bad_encoding", f"unsupported Content-Encoding {encoding!r}")
        body = _Body(limit)
        raw_total = 0
        async for chunk in response.content.iter_any():
            raw_total += len(chunk)
            if raw_total > limit:
                raise FetchError("too_large", f"body larger than {limit} bytes")
            if decoder is None:
                body.add(chunk)
                continue
            # Decompress at most what still fits (+1 to notice overflow): a bomb never inflates in memory.
            data = decoder.decompress(chunk, limit - len(body.data) + 1)
            body.add(data)
            while decoder.unconsumed_tail:
                body.add(decoder.decompress(decoder.unconsumed_tail, limit - len(body.data) + 1))
        if decoder is not None:
            body.add(decoder.flush())
        return bytes(body.data)


class _DeflateDecoder:
    """Content-Encoding: deflate is zlib-wrapped by the spec and raw deflate in practice; accept both."""

    def __init__(self) -> None:
        self._inner: Any = zlib.decompressobj()
        self._first = True

    @property
    def unconsumed_tail(self) -> bytes:
        return bytes(self._inner.unconsumed_tail)

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._first:
            self._first = False
            try:
                return bytes(self._inner.decompress(data, max_length))
            except zlib.error:
                self._inner = zlib.decompressobj(-zlib.MAX_WBITS)
        return bytes(self._inner.decompress(data, max_length))

    def flush(self) -> bytes:
        return bytes(self._inner.flush())


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Loading the CA bundle takes a while: once per process. certifi's, so every machine trusts the same roots."""
    return ssl.create_default_context(cafile=certifi.where())


def _http_url(url: str) -> URL:
    """`url` parsed, if it is an absolute http(s) URL with a host; FetchError("bad_url") otherwise."""
    try:
        target = URL(url)
        port = target.port  # yarl checks the port only when asked
    except (ValueError, TypeError) as exc:
        raise FetchError("bad_url", f"not a valid URL: {url} ({exc})") from None
    if target.scheme not in ("http", "https") or not target.raw_host or port is None:
        raise FetchError("bad_url", f"not an http(s) URL: {url}")
    return target


def _is_ip_literal(host: str) -> bool:
    """Whether aiohttp takes `host` for an address and connects to it without asking the resolver.

    This is aiohttp's own test (a colon, or only digits and dots), so nothing it connects to
    unresolved escapes the guard.
    """
    return ":" in host or host.replace(".", "").isdigit()


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        # Legacy forms such as 127.1 or 2130706433 would reach an address the guard never saw.
        raise FetchError("bad_url", f"{host} is not an IP address in a form the crawler accepts") from None


def _one_line(text: str, limit: int = 200) -> str:
    """An error text fit for a log line or a feed's last_error: parser messages span lines and echo input."""
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _small_body(headers: Mapping[str, str]) -> bool:
    declared = headers.get("content-length")
    return declared is not None and declared.isdigit() and int(declared) <= SMALL_BODY_BYTES


def _host_key(target: URL) -> str:
    """The limiter's key: host and port, the port spelled out even when it is the scheme's default."""
    return f"{(target.raw_host or '').lower()}:{target.port}"
