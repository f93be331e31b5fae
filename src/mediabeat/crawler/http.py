"""The one HTTP client every crawler request goes through.

It has connect, read and total timeouts; follows redirects itself (so every hop passes
the SSRF guard again and the caller learns whether they were permanent); caps the body
on the bytes it decompresses itself (a gzip bomb stops at the limit); sends our
User-Agent; and keeps per-host concurrency and spacing, backing off (with jitter, and
honouring Retry-After within a bound) when a host answers 429 or 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import random
import ssl
import sys
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from mediabeat.crawler.netguard import BlockedAddress, NetGuard
from mediabeat.settings import Settings

# httpcore asks "which async library is running?" on every request by trying `import sniffio`;
# when sniffio is not installed that failed import walks sys.path each time (a few hundred
# microseconds per request). Recording the absence once makes the answer instant: asyncio.
if importlib.util.find_spec("sniffio") is None:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
BACKOFF_STATUSES = frozenset({429, 503})
# A redirect body up to this size is read (and dropped) so its connection can be reused.
SMALL_BODY_BYTES = 64 * 1024


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
    allow_private: bool = False

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
            allow_private=settings.crawler_allow_private_networks,
        )


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A final (non-redirect) response with its body read, and the redirects that led to it."""

    requested_url: str
    url: str
    status: int
    headers: httpx.Headers
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


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves and vets the host, then connects to a vetted IP."""

    def __init__(self, guard: NetGuard, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.guard = guard
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore interface)
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.guard.resolve(host, port)
        error: Exception | None = None
        for ip in addresses:
            try:
                return await self.inner.connect_tcp(
                    ip, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("the crawler does not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class HostLimiter:
    """At most `concurrency` requests per host at once, starts at least `delay` apart, and cool-downs."""

    def __init__(self, *, concurrency: int, delay: float) -> None:
        self.concurrency = concurrency
        self.delay = delay
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._next_start: dict[str, float] = {}

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
            self._next_start[host] = now + self.delay
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
    """Use as `async with SafeClient(config) as client: result = await client.get(url)`."""

    def __init__(self, config: ClientConfig, *, limiter: HostLimiter | None = None) -> None:
        self.config = config
        self.guard = NetGuard(allow_private=config.allow_private)
        self.limiter = limiter or HostLimiter(concurrency=config.per_host_concurrency, delay=config.per_host_delay)
        self._clients: dict[str, httpx.AsyncClient] = {}

    def _client_for(self, host: str) -> httpx.AsyncClient:
        """One connection pool per host: small pools keep httpcore's bookkeeping cheap with many hosts."""
        client = self._clients.get(host)
        if client is None:
            client = self._clients[host] = self._new_client()
        return client

    def _new_client(self) -> httpx.AsyncClient:
        config = self.config
        transport = httpx.AsyncHTTPTransport(verify=_ssl_context(), retries=0, trust_env=False)
        # The pool's network backend is where the guard sits: every connection, on every
        # redirect hop and every retry, is made to an address the guard has just vetted.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=None,
            max_keepalive_connections=max(config.per_host_concurrency, 1),
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            retries=0,
            network_backend=GuardedBackend(self.guard),
        )
        return httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(
                connect=config.connect_timeout,
                read=config.read_timeout,
                write=config.read_timeout,
                pool=config.total_timeout,
            ),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": config.user_agent, "Accept-Encoding": "gzip, deflate"},
        )

    async def __aenter__(self) -> SafeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

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
                target = urljoin(current, location.strip())
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

    async def _with_backoff(self, url: str, headers: dict[str, str]) -> tuple[int, httpx.Headers, bytes]:
        host = _host_key(url)
        attempt = 0
        while True:
            status, response_headers, body = await self._once(url, host, headers)
            if status not in BACKOFF_STATUSES or attempt >= self.config.max_retries:
                return status, response_headers, body
            asked = retry_after_seconds(response_headers.get("retry-after"))
            wait = asked if asked is not None else 0.5 * (2**attempt)
            wait *= random.uniform(1.0, 1.25)  # jitter, never shorter than asked
            if wait > self.config.max_retry_wait:
                return status, response_headers, body  # it wants us away longer than we wait in one run
            self.limiter.cool_down(host, wait)
            attempt += 1

    async def _once(self, url: str, host: str, headers: dict[str, str]) -> tuple[int, httpx.Headers, bytes]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError("bad_url", f"not an http(s) URL: {url}")
        async with self.limiter.slot(host):
            try:
                async with self._client_for(host).stream("GET", url, headers=headers) as response:
                    if response.status_code == 304 or (
                        response.status_code in REDIRECT_STATUSES and _small_body(response.headers)
                    ):
                        # Read the (empty or small) body to its end so the connection goes back to the
                        # pool: left unread, it would be closed and the next request would connect again.
                        await self._read(response)
                        return response.status_code, response.headers, b""
                    if response.status_code in REDIRECT_STATUSES:
                        return response.status_code, response.headers, b""
                    return response.status_code, response.headers, await self._read(response)
            except BlockedAddress as exc:
                raise FetchError("blocked", str(exc)) from None
            except httpx.TimeoutException as exc:
                raise FetchError("timeout", f"{type(exc).__name__} from {parts.hostname}") from None
            except httpx.InvalidURL as exc:
                raise FetchError("bad_url", str(exc)) from None
            except (httpx.HTTPError, OSError, zlib.error) as exc:
                message = str(exc) or type(exc).__name__
                raise FetchError("network", f"{message} ({parts.hostname})") from None

    async def _read(self, response: httpx.Response) -> bytes:
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
        async for chunk in response.aiter_raw():
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
    """Loading the CA bundle takes a while: once per process."""
    return httpx.create_ssl_context()


def _small_body(headers: httpx.Headers) -> bool:
    declared = headers.get("content-length")
    return declared is not None and declared.isdigit() and int(declared) <= SMALL_BODY_BYTES


def _host_key(url: str) -> str:
    parts = urlsplit(url)
    return f"{(parts.hostname or '').lower()}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
