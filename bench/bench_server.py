"""A lean HTTP/1.1 server for the crawler benchmark: pre-built feeds and article pages, fixed latency.

    python bench/bench_server.py [--pages DIR] PORT LATENCY_MS FEEDS HOST [HOST ...]

Feeds /feeds/{k}.rss (50 entries each, ETag + 304), article pages /a/{k}/{i}.html with
navigation, ads and comments around the article, and /robots.txt. Everything is built at
start-up so the server costs almost nothing per request and the crawler is what is measured.

With --pages DIR it also serves the real pages of DIR (the unpacked corpus, read from disk
on each request: they stay out of the project) as /p/{file}, listed by /real/{k}.rss,
50 pages per feed; feed k lists its pages on the host it is fetched from, and every entry
carries a pubDate.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path
from urllib.parse import quote, unquote

WORDS = [
    "minister",
    "council",
    "report",
    "city",
    "market",
    "energy",
    "river",
    "school",
    "budget",
    "court",
    "election",
    "climate",
    "vote",
    "hospital",
    "station",
    "harbour",
    "festival",
    "museum",
    "trial",
    "strike",
    "rail",
    "bridge",
    "farmers",
    "coast",
    "storm",
    "police",
    "university",
    "research",
    "data",
    "contract",
    "housing",
    "plan",
    "water",
    "union",
    "mayor",
    "agency",
    "league",
    "season",
]


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
    return " ".join(words).capitalize() + "."


def article_page(k: int, i: int) -> bytes:
    rng = random.Random(k * 100_003 + i)
    title = " ".join(rng.choice(WORDS) for _ in range(6)).title()
    paragraphs = "".join(
        f"<p>{' '.join(sentence(rng) for _ in range(rng.randint(3, 6)))}</p>" for _ in range(rng.randint(5, 8))
    )
    nav = "".join(f'<li><a href="/section/{w}/">{w.title()}</a></li>' for w in WORDS[:12])
    ads = "".join(f'<div class="ad">Advertisement: buy {rng.choice(WORDS)} now!</div>' for _ in range(3))
    comments = "".join(f'<li class="comment">{sentence(rng)}</li>' for _ in range(5))
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} | Bench News</title>'
        f'<meta name="author" content="Reporter {k % 17}">'
        f'<meta property="article:published_time" content="2026-11-{1 + i % 27:02d}T08:00:00Z"></head><body>'
        f'<header><nav><ul>{nav}</ul></nav><form action="/search"><input name="q"></form></header>{ads}'
        f'<main><article><h1>{title}</h1><p class="byline">By Reporter {k % 17}</p>'
        f'<time datetime="2026-11-{1 + i % 27:02d}">Nov {1 + i % 27}</time>{paragraphs}</article>'
        f'<aside><h2>Related</h2><ul><li><a href="/a/{k}/{(i + 1) % 50}.html">More</a></li></ul></aside>'
        f'<section class="comments"><h2>Comments</h2><ul>{comments}</ul></section></main>'
        f'<footer><div class="newsletter">Subscribe to our newsletter</div><div class="cookie">We use cookies</div>'
        f"</footer></body></html>"
    ).encode()


def feed(k: int, base: str) -> bytes:
    items = "".join(
        f"<item><title>Story {i} of feed {k}</title><link>{base}/a/{k}/{i}.html?utm_source=rss</link>"
        f"<guid>{base}/a/{k}/{i}.html</guid><pubDate>Mon, 02 Nov 2026 {i % 24:02d}:00:00 GMT</pubDate>"
        f"<description>Summary of story {i} in feed {k}.</description></item>"
        for i in range(50)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Bench feed {k}</title>'
        f"<link>{base}/</link><description>bench</description>{items}</channel></rss>"
    ).encode()


def response(status: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


PAGES_PER_REAL_FEED = 50


def real_feed(k: int, base: str, files: list[str]) -> bytes:
    chunk = files[k * PAGES_PER_REAL_FEED : (k + 1) * PAGES_PER_REAL_FEED]
    items = "".join(
        f"<item><title>Real page {n}</title><link>{base}/p/{quote(name)}</link>"
        f"<pubDate>Tue, 03 Nov 2026 {n % 24:02d}:{n % 60:02d}:00 GMT</pubDate></item>"
        for n, name in enumerate(chunk)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Real pages {k}</title>'
        f"<link>{base}/</link><description>corpus</description>{items}</channel></rss>"
    ).encode()


class Site:
    def __init__(self, port: int, latency: float, feeds: int, pages_dir: Path | None = None) -> None:
        self.port = port
        self.latency = latency
        self.feeds = feeds
        self.pages_dir = pages_dir
        self.files = sorted(f.name for f in pages_dir.glob("*.html")) if pages_dir else []
        self.pages: dict[tuple[int, int], bytes] = {}
        self.robots = response("200 OK", b"User-agent: *\nDisallow: /private/\n", {"Content-Type": "text/plain"})

    def answer(self, host: str, path: str, headers: dict[str, str]) -> bytes:
        if path == "/robots.txt":
            return self.robots
        if path.startswith("/feeds/") and path.endswith(".rss"):
            k = int(path[7:-4])
            etag = f'"feed-{k}"'
            if headers.get("if-none-match") == etag:
                return response("304 Not Modified", b"", {"ETag": etag})
            body = feed(k, f"http://{host}")
            return response("200 OK", body, {"Content-Type": "application/rss+xml", "ETag": etag})
        if path.startswith("/real/") and path.endswith(".rss"):
            body = real_feed(int(path[6:-4]), f"http://{host}", self.files)
            return response("200 OK", body, {"Content-Type": "application/rss+xml"})
        if path.startswith("/p/") and self.pages_dir is not None:
            name = unquote(path[3:])
            if name in self.files:
                # No charset: the pages come in many encodings, declared (or not) in their markup.
                return response("200 OK", (self.pages_dir / name).read_bytes(), {"Content-Type": "text/html"})
        if path.startswith("/a/"):
            k, i = path[3:].split("?", 1)[0].removesuffix(".html").split("/")
            key = (int(k), int(i))
            page = self.pages.get(key)
            if page is None:
                page = self.pages[key] = article_page(*key)
            return response("200 OK", page, {"Content-Type": "text/html; charset=utf-8"})
        return response("404 Not Found", b"not found", {"Content-Type": "text/plain"})

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                _method, path, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                if self.latency:
                    await asyncio.sleep(self.latency)
                writer.write(self.answer(headers.get("host", "127.0.0.1"), path, headers))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()


async def main() -> None:
    args = sys.argv[1:]
    pages_dir = None
    if args[0] == "--pages":
        pages_dir, args = Path(args[1]), args[2:]
    port, latency_ms, feeds = int(args[0]), int(args[1]), int(args[2])
    site = Site(port, latency_ms / 1000, feeds, pages_dir)
    servers = [await asyncio.start_server(site.handle, host, port, backlog=1024) for host in args[3:]]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
