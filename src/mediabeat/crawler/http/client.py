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
import functools
import random
import ssl
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import certifi
from yarl import URL

from mediabeat.crawler.http.body import read_capped
from mediabeat.crawler.http.errors import FetchError, FetchErrorKind
from mediabeat.crawler.http.guard import BlockedAddress, IPNetwork, NetGuard
from mediabeat.crawler.http.limiter import HostCoolingDown, HostLimiter
from mediabeat.crawler.http.redirects import PERMANENT_REDIRECTS, REDIRECT_STATUSES, RedirectRefusal, next_redirect
from mediabeat.crawler.http.resolver import GuardedResolver
from mediabeat.crawler.http.retry_after import retry_after_seconds
from mediabeat.crawler.http.target import host_key, http_url, ip_literal, is_ip_literal
from mediabeat.settings import Settings

BACKOFF_STATUSES = frozenset({429, 503})
# A redirect body up to this size is read (and dropped) so its connection can be reused.
SMALL_BODY_BYTES = 64 * 1024
# aiohttp's default of 8 KB per header line refuses the long Content-Security-Policy and
# Set-Cookie lines some real sites send; 16 KB still bounds what a hostile server makes us buffer.
MAX_HEADER_LINE_BYTES = 16 * 1024
KEEPALIVE_SECONDS = 5.0

Response = tuple[int, Mapping[str, str], bytes]


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
    offline: bool = False  # refuse every request (fuzzing a server that must send none)

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
            offline=settings.crawler_offline,
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
        """The media type, lower-case and without parameters; "" when the server sent none."""
        return str(self.headers.get("content-type", "")).split(";", 1)[0].strip().lower()


class SafeClient:
    """Use as `async with SafeClient(config) as client: result = await client.get(url)`.

    The aiohttp session is made on first use (it needs the running loop) and closed by aclose().
    """

    def __init__(self, config: ClientConfig, *, limiter: HostLimiter | None = None) -> None:
        self.config = config
        self.guard = NetGuard(allow_loopback=config.allow_loopback, allowed_networks=config.allowed_networks)
        self.limiter = limiter or HostLimiter(
            concurrency=config.per_host_concurrency, delay=config.per_host_delay, max_wait=config.max_retry_wait
        )
        self._session: aiohttp.ClientSession | None = None

    def _session_for_requests(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = _new_session(self.config, self.guard)
        return self._session

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
        if self.config.offline:
            raise FetchError(FetchErrorKind.BLOCKED, "the crawler is offline (MEDIABEAT_CRAWLER_OFFLINE)")
        try:
            async with asyncio.timeout(self.config.total_timeout):
                return await self._get(url, dict(headers or {}))
        except TimeoutError:
            raise FetchError(
                FetchErrorKind.TIMEOUT, f"no complete response within {self.config.total_timeout:g} s"
            ) from None

    async def _get(self, url: str, headers: dict[str, str]) -> FetchResult:
        redirects: list[tuple[int, str]] = []
        current = url
        seen = {url}
        while True:
            status, response_headers, body = await self._with_backoff(current, headers)
            hop = next_redirect(
                status=status,
                headers=response_headers,
                url=current,
                method="GET",
                hops=len(redirects),
                max_redirects=self.config.max_redirects,
                seen=frozenset(seen),
            )
            if hop is None:
                return FetchResult(url, current, status, response_headers, body, tuple(redirects))
            if isinstance(hop, RedirectRefusal):
                raise FetchError(hop.kind, hop.message)
            seen.add(hop.url)
            redirects.append((hop.status, hop.url))
            current = hop.url

    async def post_form(self, url: str, form: Mapping[str, str]) -> tuple[int, str]:
        """POST a form to `url` (a WebSub hub) through the guard; the status and the first 500 characters back.

        No redirect is followed: a hub that redirects a subscription request gets a failed one.
        """
        target = http_url(url)
        hostname = target.raw_host or ""
        try:
            async with asyncio.timeout(self.config.total_timeout), self.limiter.slot(host_key(target)):
                if is_ip_literal(hostname):
                    self.guard.check_ip(hostname, ip_literal(hostname))
                session = self._session_for_requests()
                async with session.post(target, data=dict(form), allow_redirects=False) as response:
                    body = await read_capped(response.content.iter_any(), response.headers, SMALL_BODY_BYTES)
                    return response.status, body[:500].decode("utf-8", "replace")
        except TimeoutError:
            raise FetchError(
                FetchErrorKind.TIMEOUT, f"no complete response within {self.config.total_timeout:g} s"
            ) from None
        except HostCoolingDown as exc:
            raise FetchError(FetchErrorKind.COOLING_DOWN, str(exc), retry_after=exc.seconds) from None
        except (BlockedAddress, aiohttp.ClientError, OSError, zlib.error, ValueError) as exc:
            raise _fetch_error(exc, target) from None

    def cooling_down(self, url: str) -> float:
        """Seconds left of the long cool-down of `url`'s host in this process (0 when none): ask before robots.txt."""
        try:
            host = host_key(http_url(url))
        except FetchError:
            return 0.0
        return self.limiter.held_off(host)

    def respect_crawl_delay(self, url: str, seconds: float) -> None:
        """Space the requests to `url`'s host as its robots.txt asks (within the limiter's bound)."""
        try:
            host = host_key(http_url(url))
        except FetchError:
            return
        self.limiter.set_delay(host, seconds)

    async def _with_backoff(self, url: str, headers: dict[str, str]) -> Response:
        target = http_url(url)
        host = host_key(target)
        attempt = 0
        while True:
            status, response_headers, body = await self._once(target, host, headers)
            if status not in BACKOFF_STATUSES or attempt >= self.config.max_retries:
                return status, response_headers, body
            asked = retry_after_seconds(response_headers.get("retry-after"))
            wait = asked if asked is not None else 0.5 * (2**attempt)
            wait *= random.uniform(1.0, 1.25)  # jitter, never shorter than asked
            if wait > self.config.max_retry_wait:
                # It asked us away for longer than one fetch waits: the host cools down (capped), and
                # this answer goes back to the caller, who can put its work off until then. (Our own
                # backoff running out, without a Retry-After, only ends this fetch.)
                if asked is not None:
                    await self.limiter.hold_off(host, asked)
                return status, response_headers, body
            await self.limiter.cool_down(host, wait)
            attempt += 1

    async def post(self, url: str, body: bytes, *, headers: Mapping[str, str] | None = None) -> FetchResult:
        """POST `body` to `url` once (a webhook): no redirect is followed and no retry made; FetchError when it failed.

        The same guard, timeouts and body cap as a GET; a redirect comes back as the response it is.
        """
        target = http_url(url)
        try:
            async with asyncio.timeout(self.config.total_timeout):
                status, response_headers, data = await self._once(
                    target, host_key(target), dict(headers or {}), method="POST", data=body
                )
        except TimeoutError:
            raise FetchError(
                FetchErrorKind.TIMEOUT, f"no complete response within {self.config.total_timeout:g} s"
            ) from None
        return FetchResult(url, url, status, response_headers, data)

    async def vet(self, url: str) -> None:
        """Check that `url` is http(s) and its host one the guard allows, connecting nowhere; FetchError if not."""
        target = http_url(url)
        hostname = target.raw_host or ""
        try:
            if is_ip_literal(hostname):
                self.guard.check_ip(hostname, ip_literal(hostname))
            else:
                await self.guard.resolve(hostname, target.port or 0)
        except (BlockedAddress, OSError) as exc:
            raise _fetch_error(exc, target) from None

    async def _once(
        self, target: URL, host: str, headers: dict[str, str], *, method: str = "GET", data: bytes | None = None
    ) -> Response:
        # `target` is the very URL object aiohttp connects to, so the host vetted is the host used.
        hostname = target.raw_host or ""
        # Made before the slot is taken (the first one loads the CA bundle): the request goes out
        # as soon as its start comes, so the starts the limiter spaced are the ones the host sees.
        self._session_for_requests()
        try:
            async with self.limiter.slot(host):
                try:
                    if is_ip_literal(hostname):
                        self.guard.check_ip(hostname, ip_literal(hostname))
                    return await self._request(target, headers, method=method, data=data)
                except (BlockedAddress, aiohttp.ClientError, OSError, zlib.error, ValueError) as exc:
                    raise _fetch_error(exc, target) from None
        except HostCoolingDown as exc:
            raise FetchError(FetchErrorKind.COOLING_DOWN, str(exc), retry_after=exc.seconds) from None

    async def _request(
        self, target: URL, headers: dict[str, str], *, method: str = "GET", data: bytes | None = None
    ) -> Response:
        session = self._session_for_requests()
        async with session.request(method, target, headers=headers, data=data, allow_redirects=False) as response:
            status = response.status
            if status == 304 or (status in REDIRECT_STATUSES and _small_body(response.headers)):
                # Read the (empty or small) body to its end so the connection goes back to the
                # pool: left unread, it would be closed and the next request would connect again.
                await read_capped(response.content.iter_any(), response.headers, self.config.max_body_bytes)
                return status, response.headers, b""
            if status in REDIRECT_STATUSES:
                return status, response.headers, b""
            body = await read_capped(response.content.iter_any(), response.headers, self.config.max_body_bytes)
            return status, response.headers, body


def _fetch_error(exc: Exception, target: URL) -> FetchError:
    """The FetchError, readable and on one line, for what went wrong talking to `target`."""
    hostname = target.raw_host or ""
    if isinstance(exc, BlockedAddress):
        return FetchError(FetchErrorKind.BLOCKED, str(exc))
    if isinstance(exc, TimeoutError):
        return FetchError(
            FetchErrorKind.TIMEOUT,
            f"{hostname} did not answer in time (MEDIABEAT_CRAWLER_CONNECT_TIMEOUT, _READ_TIMEOUT and _TOTAL_TIMEOUT)",
        )
    if isinstance(exc, aiohttp.InvalidURL):
        return FetchError(FetchErrorKind.BAD_URL, f"invalid URL {target}: {exc}")
    if isinstance(exc, aiohttp.ClientResponseError):
        # Raised while parsing: the server's answer is not valid HTTP/1.1.
        return FetchError(FetchErrorKind.NETWORK, f"malformed HTTP response: {_one_line(exc.message)} ({hostname})")
    if isinstance(exc, aiohttp.ClientConnectorError):
        # Its own text reads "[None]" when the cause (the guard's "cannot resolve") has no errno.
        cause = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
        return FetchError(FetchErrorKind.NETWORK, f"cannot connect to {hostname}:{target.port}: {cause}")
    if isinstance(exc, aiohttp.ClientError | OSError | zlib.error):
        message = _one_line(str(exc)) or type(exc).__name__
        return FetchError(FetchErrorKind.NETWORK, f"{message} ({hostname})")
    # aiohttp refuses to send a header value with control characters (header injection).
    return FetchError(FetchErrorKind.NETWORK, f"request not sent: {_one_line(str(exc))} ({hostname})")


def _new_session(config: ClientConfig, guard: NetGuard) -> aiohttp.ClientSession:
    # The connector's resolver is where the guard sits: every connection, on every redirect
    # hop and every retry, is made to an address the guard has vetted (its DNS cache, 10 s,
    # holds only vetted answers). A TCPConnector never opens a unix socket. Limits are the
    # HostLimiter's job, so the connector's own are off.
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(guard),
        ssl=_ssl_context(),
        limit=0,
        limit_per_host=0,
        keepalive_timeout=KEEPALIVE_SECONDS,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=config.connect_timeout, sock_read=config.read_timeout),
        headers={"User-Agent": config.user_agent, "Accept-Encoding": "gzip, deflate"},
        # Cookies a site sets are sent back to it within this client's life, as browsers do;
        # unsafe=True keeps them for hosts given as IP addresses too.
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        auto_decompress=False,
        trust_env=False,
        max_line_size=MAX_HEADER_LINE_BYTES,
        max_field_size=MAX_HEADER_LINE_BYTES,
    )


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Loading the CA bundle takes a while: once per process. certifi's, so every machine trusts the same roots."""
    return ssl.create_default_context(cafile=certifi.where())


def _one_line(text: str, limit: int = 200) -> str:
    """An error text fit for a log line or a feed's last_error: parser messages span lines and echo input."""
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _small_body(headers: Mapping[str, str]) -> bool:
    declared = headers.get("content-length")
    return declared is not None and declared.isdigit() and int(declared) <= SMALL_BODY_BYTES
