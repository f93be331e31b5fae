"""The safe HTTP client against real loopback servers: guard, limits, redirects, backoff."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import socket
import time
import zlib

import aiohappyeyeballs
import pytest

from mediabeat.crawler.http import (
    AddressRefusal,
    ClientConfig,
    FetchError,
    FetchErrorKind,
    NetGuard,
    SafeClient,
    forbidden_reason,
    retry_after_seconds,
)
from mediabeat.settings import SettingsError, load_settings
from tests.loopback import LoopbackServer, Route


def config(**overrides: object) -> ClientConfig:
    values: dict[str, object] = {
        "user_agent": "MediaBeatTest/1 (+https://example.org/contact)",
        "allow_loopback": True,
        "connect_timeout": 2.0,
        "read_timeout": 1.0,
        "total_timeout": 3.0,
        "max_body_bytes": 100_000,
        "max_retry_wait": 2.0,
    }
    values.update(overrides)
    return ClientConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[list[object]]:
    """Every TCP connection the client opens, by address.

    aiohttp opens every TCP connection through aiohappyeyeballs.start_connection: counting its
    calls (and the server's accepts) proves a refusal happens before any socket is opened.
    """
    attempts: list[list[object]] = []
    real_start = aiohappyeyeballs.start_connection

    async def counting_start(addr_infos: list[tuple[object, ...]], **kw: object) -> object:
        attempts.append([info[4] for info in addr_infos])
        return await real_start(addr_infos, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(aiohappyeyeballs, "start_connection", counting_start)
    return attempts


async def test_guard_refuses_a_private_address_before_any_connection(
    site: LoopbackServer, connects: list[list[object]]
) -> None:
    site.routes["/"] = Route(body=b"secret")
    async with SafeClient(config(allow_loopback=False)) as client:
        # "localhost" is a name: the refusal comes after DNS resolution, and before connecting.
        # The IP literals never reach a resolver in aiohttp: the client vets them itself.
        for url in (site.url("/", host="localhost"), site.url("/"), f"http://[::ffff:127.0.0.1]:{site.port}/"):
            with pytest.raises(FetchError, match=r"an address the crawler never fetches") as caught:
                await client.get(url)
            assert caught.value.kind == "blocked"
        # Legacy numeric forms of 127.0.0.1 are refused too, as blocked or as a bad URL.
        for url in (f"http://127.1:{site.port}/", f"http://2130706433:{site.port}/", f"http://0x7f000001:{site.port}/"):
            with pytest.raises(FetchError) as caught:
                await client.get(url)
            assert caught.value.kind in {"blocked", "bad_url"}, (url, caught.value)
    assert connects == [] and site.accepted == 0 and site.requests == []

    async with SafeClient(config(allow_loopback=True)) as client:
        ok = await client.get(site.url("/"))
    assert ok.status == 200 and ok.body == b"secret" and site.accepted == 1 and len(connects) == 1


async def test_guard_checks_every_redirect_hop(site: LoopbackServer) -> None:
    site.routes["/go"] = Route(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    async with SafeClient(config(allow_loopback=True)) as client:
        with pytest.raises(FetchError, match="metadata") as caught:
            await client.get(site.url("/go"))
    assert caught.value.kind == "blocked"


def test_forbidden_addresses() -> None:
    for address in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.0.1", "169.254.1.1", "::1", "fe80::1", "fc00::1"):
        assert forbidden_reason(ipaddress.ip_address(address), allow_loopback=False), address
    assert forbidden_reason(ipaddress.ip_address("169.254.169.254"), allow_loopback=True) is AddressRefusal.METADATA
    assert forbidden_reason(ipaddress.ip_address("224.0.0.1"), allow_loopback=True) is AddressRefusal.MULTICAST
    assert forbidden_reason(ipaddress.ip_address("127.0.0.5"), allow_loopback=True) is None
    assert forbidden_reason(ipaddress.ip_address("::1"), allow_loopback=True) is None
    assert forbidden_reason(ipaddress.ip_address("93.184.216.34"), allow_loopback=False) is None
    # Loopback allowed is loopback only: the private ranges stay refused.
    for address in ("10.1.2.3", "192.168.0.1", "172.16.0.1", "169.254.1.1", "fc00::1", "::ffff:10.1.2.3"):
        assert forbidden_reason(ipaddress.ip_address(address), allow_loopback=True), address
    # A range listed in MEDIABEAT_CRAWLER_ALLOWED_NETWORKS opens that range and nothing else, never the metadata.
    intranet = (ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("169.254.0.0/16"))
    assert forbidden_reason(ipaddress.ip_address("10.20.3.4"), allow_loopback=False, allowed_networks=intranet) is None
    assert forbidden_reason(ipaddress.ip_address("10.21.3.4"), allow_loopback=False, allowed_networks=intranet)
    assert forbidden_reason(ipaddress.ip_address("127.0.0.1"), allow_loopback=False, allowed_networks=intranet)
    metadata = ipaddress.ip_address("169.254.169.254")
    assert forbidden_reason(metadata, allow_loopback=True, allowed_networks=intranet) is AddressRefusal.METADATA


async def test_loopback_allowed_still_refuses_private_ranges_before_connecting(connects: list[list[object]]) -> None:
    async with SafeClient(config(allow_loopback=True)) as client:
        for url, hint in (
            ("http://10.20.3.4/feed.xml", "MEDIABEAT_CRAWLER_ALLOWED_NETWORKS"),
            ("http://192.168.1.1/", "MEDIABEAT_CRAWLER_ALLOWED_NETWORKS"),
            ("http://[fd00::1]/", "MEDIABEAT_CRAWLER_ALLOWED_NETWORKS"),
        ):
            with pytest.raises(
                FetchError, match=r"is an address the crawler never fetches \(private network\)"
            ) as caught:
                await client.get(url)
            assert caught.value.kind == "blocked" and hint in str(caught.value)
    assert connects == []


def test_allowed_networks_setting_is_checked() -> None:
    settings = load_settings(crawler_allowed_networks="10.20.0.0/16, fd12:3456::/48")
    assert ClientConfig.from_settings(settings).allowed_networks == (
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("fd12:3456::/48"),
    )
    with pytest.raises(SettingsError, match="MEDIABEAT_CRAWLER_ALLOWED_NETWORKS: 'intranet' is not a network"):
        load_settings(crawler_allowed_networks="10.0.0.0/8,intranet")


async def test_rebinding_cannot_switch_the_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name is resolved once by the guard; a public answer then a private one still fails closed."""
    answers = [
        [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80)),
            (socket.AF_INET, 1, 6, "", ("10.0.0.1", 80)),
        ]
    ]

    async def fake_getaddrinfo(*args: object, **kwargs: object) -> object:
        return answers[0]

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(Exception, match="private network"):
        await NetGuard(allow_loopback=False).resolve("rebind.example", 80)


async def test_a_refusal_does_not_reveal_what_a_name_resolves_to(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, connects: list[list[object]]
) -> None:
    """Members read the error on their feeds: it names the host, the resolved address goes to the log only."""

    async def fake_getaddrinfo(*args: object, **kwargs: object) -> object:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 80))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fake_getaddrinfo)
    async with SafeClient(config(allow_loopback=False)) as client:
        with pytest.raises(FetchError) as caught:
            await client.get("http://priv.test/feed.xml")
    message = str(caught.value)
    assert caught.value.kind is FetchErrorKind.BLOCKED
    assert message.startswith("priv.test resolves to an address the crawler never fetches (private network)")
    assert "10.0.0.1" not in message
    assert "10.0.0.1" in caplog.text and connects == []


EMBEDDED_LOOPBACK = (
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1:7f00:0:100::",  # local-use NAT64 (/48 layout) of 127.0.0.1
    "64:ff9b:1::a00:1",  # local-use NAT64 (/96 inside it) of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1 (inverted)
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::127.0.0.1",  # IPv4-compatible
    "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
)


def test_ipv4_embedded_in_ipv6_is_vetted_as_ipv4() -> None:
    for literal in EMBEDDED_LOOPBACK:
        assert forbidden_reason(ipaddress.ip_address(literal), allow_loopback=False) is not None, literal
    metadata = ("2002:a9fe:a9fe::", "64:ff9b::a9fe:a9fe", "::a9fe:a9fe")
    for literal in metadata:
        assert forbidden_reason(ipaddress.ip_address(literal), allow_loopback=True) is AddressRefusal.METADATA
    # A 6to4 address of a public IPv4 address (93.184.216.34) stays reachable.
    assert forbidden_reason(ipaddress.ip_address("2002:5db8:d822::1"), allow_loopback=False) is None


async def test_embedded_ipv4_is_refused_before_any_connection(
    site: LoopbackServer, connects: list[list[object]]
) -> None:
    async with SafeClient(config(allow_loopback=False)) as client:
        for literal in EMBEDDED_LOOPBACK:
            with pytest.raises(FetchError, match=r"an address the crawler never fetches") as caught:
                await client.get(f"http://[{literal}]:{site.port}/")
            assert caught.value.kind is FetchErrorKind.BLOCKED, literal
    assert connects == [] and site.accepted == 0


async def test_user_agent_redirects_and_permanent_url(site: LoopbackServer) -> None:
    site.routes["/old"] = Route(status=301, headers={"Location": "/mid"})
    site.routes["/mid"] = Route(status=308, headers={"Location": site.url("/new")})
    site.routes["/new"] = Route(body=b"here")
    site.routes["/temp"] = Route(status=302, headers={"Location": "/new"})
    site.routes["/loop"] = Route(status=302, headers={"Location": "/loop2"})
    site.routes["/loop2"] = Route(status=302, headers={"Location": "/loop"})
    async with SafeClient(config(max_redirects=3)) as client:
        moved = await client.get(site.url("/old"))
        assert moved.status == 200 and moved.body == b"here" and moved.permanent_url == site.url("/new")
        temp = await client.get(site.url("/temp"))
        assert temp.body == b"here" and temp.permanent_url is None
        with pytest.raises(FetchError) as caught:
            await client.get(site.url("/loop"))
        assert caught.value.kind in {"redirect_loop", "too_many_redirects"}
    assert all(h["user-agent"] == "MediaBeatTest/1 (+https://example.org/contact)" for _, h in site.requests)


async def test_body_limit_counts_decompressed_bytes(site: LoopbackServer) -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)  # ~5 KB on the wire, 5 MB inflated
    site.routes["/bomb"] = Route(body=bomb, headers={"Content-Encoding": "gzip"})
    site.routes["/big"] = Route(body=b"x" * 200_000)
    site.routes["/ok.gz"] = Route(body=gzip.compress(b"hello" * 100), headers={"Content-Encoding": "gzip"})
    site.routes["/deflate"] = Route(body=zlib.compress(b"deflated"), headers={"Content-Encoding": "deflate"})
    site.routes["/chunked-big"] = Route(chunks=[(b"y" * 60_000, 0.0), (b"y" * 60_000, 0.0)])
    async with SafeClient(config()) as client:
        assert (await client.get(site.url("/ok.gz"))).body == b"hello" * 100
        assert (await client.get(site.url("/deflate"))).body == b"deflated"
        for path in ("/bomb", "/big", "/chunked-big"):
            with pytest.raises(FetchError, match="larger than 100000") as caught:
                await client.get(site.url(path))
            assert caught.value.kind == "too_large"


async def test_slow_server_hits_the_timeouts(site: LoopbackServer) -> None:
    site.routes["/slow-headers"] = Route(body=b"late", delay=2.5)
    site.routes["/trickle"] = Route(chunks=[(b"a", 0.5)] * 20)  # each byte in time, the whole too slow
    async with SafeClient(config(read_timeout=1.0, total_timeout=2.0)) as client:
        for path, said in (
            ("/slow-headers", "127.0.0.1 did not answer in time (MEDIABEAT_CRAWLER_CONNECT_TIMEOUT, _READ_TIMEOUT"),
            ("/trickle", "no complete response within 2 s"),
        ):
            started = time.monotonic()
            with pytest.raises(FetchError) as caught:
                await client.get(site.url(path))
            assert caught.value.kind == "timeout"
            assert str(caught.value).startswith(said)  # in words, not an exception's class name
            assert time.monotonic() - started < 4.0  # bounded by the total timeout, not the server


async def test_429_backs_off_honouring_retry_after(site: LoopbackServer) -> None:
    calls = {"n": 0}

    def busy_then_ok(headers: dict[str, str]) -> Route:
        calls["n"] += 1
        if calls["n"] == 1:
            return Route(status=429, headers={"Retry-After": "1"})
        return Route(body=b"fine")

    site.routes["/busy"] = Route(dynamic=busy_then_ok)
    site.routes["/away"] = Route(status=503, headers={"Retry-After": "3600"})
    async with SafeClient(config(total_timeout=5.0)) as client:
        started = time.monotonic()
        result = await client.get(site.url("/busy"))
        waited = time.monotonic() - started
        assert result.status == 200 and calls["n"] == 2 and waited >= 1.0
        # Retry-After beyond what one fetch waits: the 503 comes back at once as the answer.
        away = await client.get(site.url("/away"))
        assert away.status == 503 and site.paths().count("/away") == 1


async def test_per_host_concurrency_is_bounded(site: LoopbackServer) -> None:
    active = {"now": 0, "max": 0}

    def tracking(headers: dict[str, str]) -> Route:
        active["now"] += 1
        active["max"] = max(active["max"], active["now"])
        time.sleep(0.2)
        active["now"] -= 1
        return Route(body=b"x")

    site.routes["/slow"] = Route(dynamic=tracking)
    async with SafeClient(config(per_host_concurrency=2)) as client:
        results = await asyncio.gather(*(client.get(site.url("/slow")) for _ in range(6)))
    assert all(r.status == 200 for r in results) and active["max"] == 2


def test_retry_after_forms() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


async def test_conditional_gets_reuse_one_connection_and_headers_ignore_case(
    site: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.routes["/feed"] = Route(status=304, headers={"ETag": '"v1"', "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"})
    site.routes["/moved"] = Route(status=301, headers={"Location": "/feed"}, body=b"see /feed")
    # A proxy from the environment is never used: this one would refuse every connection.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    async with SafeClient(config()) as client:
        for _ in range(5):
            result = await client.get(site.url("/feed"), headers={"If-None-Match": '"v1"'})
            assert result.status == 304 and result.body == b""
            assert result.headers.get("etag") == result.headers.get("ETAG") == '"v1"'
            assert result.headers.get("last-modified") == "Wed, 21 Oct 2015 07:28:00 GMT"
        moved = await client.get(site.url("/moved"))
    assert moved.status == 304 and moved.permanent_url == site.url("/feed")
    assert site.accepted == 1 and len(site.requests) == 7
    assert all(h["accept-encoding"] == "gzip, deflate" for _, h in site.requests)


RAW_ANSWERS = {
    "/not-http": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "/long-header": b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 100_000 + b"\r\nContent-Length: 2\r\n\r\nok",
    "/hang-up": b"",
    "/short-body": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this",
    "/brotli": b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 4\r\n\r\nabcd",
    "/bad-gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!",
}


async def test_a_hostile_server_gives_readable_errors() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        path = request.split(b" ", 2)[1].decode()
        writer.write(RAW_ANSWERS[path])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    expected = {
        "/not-http": "network",
        "/long-header": "network",
        "/hang-up": "network",
        "/short-body": "network",
        "/brotli": "bad_encoding",
        "/bad-gzip": "network",
    }
    try:
        async with SafeClient(config()) as client:
            for path, kind in expected.items():
                with pytest.raises(FetchError) as caught:
                    await client.get(f"http://127.0.0.1:{port}{path}")
                assert caught.value.kind == kind, (path, caught.value)
                assert str(caught.value) and "Traceback" not in str(caught.value), path
    finally:
        server.close()
        await server.wait_closed()


async def test_a_header_that_would_inject_another_is_not_sent(site: LoopbackServer) -> None:
    site.routes["/"] = Route(body=b"ok")
    async with SafeClient(config()) as client:
        with pytest.raises(FetchError, match="request not sent") as caught:
            await client.get(site.url("/"), headers={"If-None-Match": '"v1"\r\nX-Injected: yes'})
    assert caught.value.kind == "network" and site.requests == []
