"""Hostile modes of the local news site: the ways real feeds and pages misbehave, one per path.

`/hostile/{mode}/feed.xml` misbehaves where a feed is expected and `/hostile/{mode}/page.html`
where an article page is. Large bodies are generated lazily while they are sent, so the site
itself never holds more than one chunk of them in memory.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from starlette.responses import RedirectResponse, Response, StreamingResponse

MODES: dict[str, str] = {
    "slow": "trickles the body one byte at a time (slow-loris)",
    "slow-headers": "sends nothing at all for a long time, then the body",
    "error-500": "500 Internal Server Error",
    "rate-limited": "429 Too Many Requests with Retry-After",
    "redirect-loop": "302 redirects between two URLs, forever",
    "moved": "301 Moved Permanently to a new URL that works",
    "moved-308": "308 Permanent Redirect to a new URL that works",
    "found": "302 Found to a temporary URL that works (the old URL stays)",
    "gone": "410 Gone",
    "huge": "a 50 MB body, streamed without Content-Length",
    "gzip-bomb": "a few MB of gzip that inflate to GBs (Content-Encoding: gzip)",
    "malformed": "XML (or HTML) that is not well-formed",
    "wrong-charset": "declares UTF-8 but the bytes are Latin-1",
    "wrong-charset-reverse": "declares ISO-8859-1 but the bytes are UTF-8",
    "html": "an HTML page where a feed is expected",
    "empty": "200 OK with an empty body",
    "bom": "a valid body that starts with a UTF-8 byte-order mark",
    "relative-links": "a valid feed with relative links and no dates",
}

_NON_ASCII_TITLE = "Zürich café reopens: crème brûlée for all, says Señora Müller"
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class HostileConfig:
    """How hostile the hostile modes are; tests shrink the numbers to stay fast."""

    slow_byte_interval_s: float = 1.0
    slow_total_s: float = 600.0
    slow_headers_delay_s: float = 120.0
    huge_bytes: int = 50 * 1024 * 1024
    bomb_inflated_bytes: int = 10 * 1024**3
    retry_after_s: int = 120
    # robots.txt answers 503 on these addresses (a crawler must then treat the host as disallowed)
    robots_error_hosts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class HostileBodies:
    """The well-behaved bodies a hostile response is made from (built by the site for this request)."""

    feed_xml: str
    page_html: str


def is_feed_name(name: str) -> bool:
    return name.endswith((".xml", ".rss", ".atom"))


async def hostile_response(
    mode: str,
    name: str,
    config: HostileConfig,
    bodies: Callable[[], HostileBodies],
    disconnected: Callable[[], Awaitable[bool]],
) -> Response:
    """The response of `/hostile/{mode}/{name}`; `bodies` is called only by modes that need content."""
    feed = is_feed_name(name)
    media_type = "application/rss+xml" if feed else "text/html"
    ext = "xml" if feed else "html"
    kind = "feed" if feed else "page"
    if mode in ("moved", "moved-308", "found"):
        target_name = f"new-{kind}.{ext}" if mode != "found" else f"temporary-{kind}.{ext}"
        if name == target_name:
            return _body_response(bodies(), feed, media_type)
        return RedirectResponse(
            f"/hostile/{mode}/{target_name}", status_code={"moved": 301, "found": 302}.get(mode, 308)
        )
    if mode == "redirect-loop":
        other = f"other-{kind}.{ext}" if not name.startswith("other-") else f"{kind}.{ext}"
        return RedirectResponse(f"/hostile/{mode}/{other}", status_code=302)
    simple = _status_response(mode, config)
    if simple is not None:
        return simple
    if mode == "slow":
        return StreamingResponse(_trickle(_good(bodies(), feed), config), media_type=media_type)
    if mode == "slow-headers":
        await _wait_unless_gone(config.slow_headers_delay_s, disconnected)
        return _body_response(bodies(), feed, media_type)
    if mode == "huge":
        return StreamingResponse(_huge(_good(bodies(), feed), config.huge_bytes, feed), media_type=media_type)
    if mode == "gzip-bomb":
        return StreamingResponse(
            gzip_bomb(config.bomb_inflated_bytes), media_type=media_type, headers={"Content-Encoding": "gzip"}
        )
    return _content_response(mode, bodies(), feed, media_type)


async def _wait_unless_gone(seconds: float, disconnected: Callable[[], Awaitable[bool]]) -> None:
    """Sleep, but stop early once the client has given up, so that no handler outlives its client."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if await disconnected():
            return
        await asyncio.sleep(min(0.25, max(0.0, deadline - loop.time())))


def _status_response(mode: str, config: HostileConfig) -> Response | None:
    if mode == "error-500":
        return Response("Internal Server Error: the demo site failed on purpose\n", 500, media_type="text/plain")
    if mode == "rate-limited":
        headers = {"Retry-After": str(config.retry_after_s)}
        return Response("Too Many Requests: slow down\n", 429, headers=headers, media_type="text/plain")
    if mode == "gone":
        return Response("Gone: this feed was removed for good\n", 410, media_type="text/plain")
    if mode == "empty":
        return Response(b"", 200, media_type="application/rss+xml")
    return None


def _content_response(mode: str, bodies: HostileBodies, feed: bool, media_type: str) -> Response:
    text = _good(bodies, feed)
    if mode == "malformed":
        return Response(malformed(text, feed).encode(), media_type=media_type)
    if mode == "wrong-charset":
        body = _with_non_ascii(text, feed).encode("latin-1", errors="replace")
        return Response(body, headers={"Content-Type": f"{media_type}; charset=utf-8"})
    if mode == "wrong-charset-reverse":
        declared = _with_non_ascii(text, feed).replace('encoding="utf-8"', 'encoding="iso-8859-1"')
        declared = declared.replace('<meta charset="utf-8">', '<meta charset="iso-8859-1">')
        return Response(declared.encode(), headers={"Content-Type": f"{media_type}; charset=iso-8859-1"})
    if mode == "html":
        return Response(bodies.page_html.encode(), media_type="text/html")
    if mode == "bom":
        return Response(b"\xef\xbb\xbf" + text.encode(), media_type=media_type)
    if mode == "relative-links":
        return Response(text.encode(), media_type=media_type)
    return Response(f"unknown hostile mode {mode!r}\n", 404, media_type="text/plain")


def _good(bodies: HostileBodies, feed: bool) -> str:
    return bodies.feed_xml if feed else bodies.page_html


def _body_response(bodies: HostileBodies, feed: bool, media_type: str) -> Response:
    return Response(_good(bodies, feed).encode(), media_type=media_type)


def _with_non_ascii(text: str, feed: bool) -> str:
    if feed:
        item = f"<item><title>{_NON_ASCII_TITLE}</title><link>/culture/zurich</link></item>\n"
        return text.replace("<item>", item + "    <item>", 1)
    return text.replace("<h1>", f"<h1>{_NON_ASCII_TITLE}: ", 1)


def malformed(text: str, feed: bool) -> str:
    """Break the document the way careless generators do: a bare ampersand, an unclosed tag, no end."""
    broken = text.replace("<title>", "<title>Fish & Chips <b>", 2)
    if feed:
        return broken.replace("</channel>\n</rss>\n", "").replace("</feed>\n", "")
    return broken.replace("</body>\n</html>\n", "<div><p>")


async def _trickle(text: str, config: HostileConfig) -> AsyncIterator[bytes]:
    data = text.encode()
    sent = 0
    elapsed = 0.0
    while sent < len(data) and elapsed < config.slow_total_s:
        yield data[sent : sent + 1]
        sent += 1
        await asyncio.sleep(config.slow_byte_interval_s)
        elapsed += config.slow_byte_interval_s


async def _huge(text: str, total: int, feed: bool) -> AsyncIterator[bytes]:
    """A real document padded with a comment to `total` bytes; the padding is one reused chunk."""
    head = text.encode()
    tail = b"-->\n"
    yield head + b"<!-- "
    remaining = max(0, total - len(head) - 5 - len(tail))
    pad = b"x" * _CHUNK
    while remaining > 0:
        step = min(remaining, _CHUNK)
        yield pad[:step]
        remaining -= step
        await asyncio.sleep(0)
    yield tail


def gzip_bomb(inflated_bytes: int, *, block: int = 1024 * 1024) -> AsyncIterator[bytes]:
    """A gzip stream of `inflated_bytes` zero bytes, about 1000x smaller, made block by block.

    After a full flush deflate starts afresh, so every further megabyte of zeros compresses to the
    same bytes: one compressed block is made once and sent again and again.
    """

    async def stream() -> AsyncIterator[bytes]:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        zeros = bytes(block)
        first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
        repeat = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
        yield b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # gzip header: deflate, no name, mtime 0
        crc = 0
        blocks = max(1, inflated_bytes // block)
        for index in range(blocks):
            crc = zlib.crc32(zeros, crc)
            yield first if index == 0 else repeat
            if index % 16 == 0:
                await asyncio.sleep(0)
        yield compressor.flush(zlib.Z_FINISH) + struct.pack("<II", crc, (blocks * block) & 0xFFFFFFFF)

    return stream()
