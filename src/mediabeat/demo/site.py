"""The local news site (`mediabeat demo-site`): an ASGI app serving deterministic news.

It serves feeds (RSS 2.0 and Atom), article pages, robots.txt, `/feeds.opml`, and misbehaving
feeds under `/hostile/` (listed in `/hostile.opml`). Feeds and pages carry an ETag and
Last-Modified and answer conditional requests with 304. Content comes from `demo.content` for
the `now` the injected clock gives, so tests can move time forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mediabeat.demo import content, feeds, pages
from mediabeat.demo.hostile import MODES, HostileBodies, HostileConfig, hostile_response, is_feed_name
from mediabeat.demo.hub import HUB_PATH, DemoHub

NowFn = Callable[[], datetime]

RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
OPML_TYPE = "text/x-opml; charset=utf-8"


def _system_now() -> datetime:
    return datetime.now(UTC)


def base_url(request: Request) -> str:
    """The site's address as the client reached it, so that links work on every listening address."""
    return str(request.base_url).rstrip("/")


def conditional_response(
    request: Request, body: bytes, media_type: str, last_modified: datetime, etag: str | None = None
) -> Response:
    """A 200 with ETag and Last-Modified, or a 304 when the client's validators still match."""
    tag = etag or f'"{hashlib.sha256(body).hexdigest()[:24]}"'
    headers = {
        "ETag": tag,
        "Last-Modified": feeds.http_date(last_modified),
        "Cache-Control": "no-cache",
    }
    if _not_modified(request, tag, last_modified):
        return Response(status_code=304, headers=headers)
    return Response(body, headers={**headers, "Content-Type": media_type})


def _not_modified(request: Request, etag: str, last_modified: datetime) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:  # RFC 9110 13.1.2: If-None-Match wins over If-Modified-Since
        candidates = {c.strip().removeprefix("W/") for c in if_none_match.split(",")}
        return "*" in candidates or etag in candidates
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        parsed = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return last_modified.replace(microsecond=0) <= parsed


class _Latency:
    """Delays every HTTP request, to imitate a server far away (benchmarks)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.seconds > 0:
            await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)


def create_demo_app(
    config: content.DemoSiteConfig | None = None,
    *,
    hostile: HostileConfig | None = None,
    now: NowFn | None = None,
    latency_s: float = 0.0,
) -> ASGIApp:
    """The demo site; `now` decides which articles exist (defaults to the real time)."""
    handlers = _DemoHandlers(config or content.DemoSiteConfig(), hostile or HostileConfig(), now or _system_now)
    hub = DemoHub(render=handlers.render_topic, version=handlers.topic_version, now=handlers.clock)
    routes = [
        Route("/", handlers.home),
        Route(HUB_PATH, hub.handle, methods=["POST"]),
        Route("/robots.txt", handlers.robots),
        Route("/healthz", handlers.healthz),
        Route("/feeds.opml", handlers.feeds_opml),
        Route("/hostile.opml", handlers.hostile_opml),
        Route("/feeds/{name}", handlers.feed),
        Route("/sitemaps/{name}", handlers.sitemap),
        Route("/hostile/{mode}/{name}", handlers.hostile_path),
        Route("/private/{rest:path}", handlers.private),
        Route("/{section}/", handlers.section_page),
        Route("/{section}/{page}", handlers.article),
    ]
    app = Starlette(routes=routes)
    app.state.hub = hub
    return _Latency(app, latency_s) if latency_s > 0 else app


class _DemoHandlers:
    """The demo site's request handlers, for one site config, hostile config and clock."""

    def __init__(self, site: content.DemoSiteConfig, hostile: HostileConfig, clock: NowFn) -> None:
        self.site = site
        self.hostile = hostile
        self.clock = clock

    def outlet(self, where: Request | str) -> content.DemoSiteConfig:
        """The outlet a request (or a URL) reached: each loopback address is a publisher of its own."""
        if isinstance(where, str):
            return self.site.for_host(urlsplit(where).hostname)
        server = where.scope.get("server")
        return self.site.for_host(server[0] if server else where.url.hostname)

    async def home(self, request: Request) -> Response:
        at = self.clock()
        body = pages.home_html(self.outlet(request), at).encode()
        return conditional_response(request, body, HTML_TYPE, _site_last_modified(self.site, at))

    async def robots(self, request: Request) -> Response:
        if request.url.hostname in self.hostile.robots_error_hosts:
            return PlainTextResponse("Service Unavailable\n", status_code=503)
        return PlainTextResponse(pages.robots_txt(base_url(request)))

    async def sitemap(self, request: Request) -> Response:
        """/sitemaps/news.xml (an index of the per-section news sitemaps), news-SECTION.xml, pages.xml."""
        name, root = request.path_params["name"], base_url(request)
        if name == "news.xml":
            body = feeds.news_sitemap_index(self.site, root)
        elif name == "pages.xml":
            body = feeds.pages_sitemap(self.site, root)
        elif name.startswith("news-") and self.site.section_title(name[5:].removesuffix(".xml")) is not None:
            body = feeds.news_sitemap(self.site, name[5:].removesuffix(".xml"), root, self.clock())
        else:
            return _not_found()
        return Response(body.encode(), media_type="application/xml")

    async def feeds_opml(self, request: Request) -> Response:
        body = feeds.site_opml(self.outlet(request), base_url(request)).encode()
        return Response(body, media_type=OPML_TYPE)

    async def hostile_opml(self, request: Request) -> Response:
        root = base_url(request)
        outlines = [
            (f"Hostile: {mode} ({what})", "rss", f"{root}/hostile/{mode}/feed.xml") for mode, what in MODES.items()
        ]
        body = feeds.opml("The Daily Loopback: hostile feeds", outlines).encode()
        return Response(body, media_type=OPML_TYPE)

    async def feed(self, request: Request) -> Response:
        root = base_url(request)
        rendered = self.render_topic(root + request.url.path)
        if rendered is None:
            return _not_found()
        section = request.path_params["name"].rpartition(".")[0]
        at = self.clock()
        response = conditional_response(
            request, rendered[0], rendered[1], feeds.feed_last_modified(self.site, section, at)
        )
        # WebSub 4: the hub and the topic in the Link header too, as hubs advise publishers.
        response.headers["Link"] = f'<{root}{HUB_PATH}>; rel="hub", <{root}{request.url.path}>; rel="self"'
        return response

    def _topic_section(self, topic: str) -> tuple[str, str, str] | None:
        """(site root, section, rss|atom) of a feed URL of this site, or None."""
        root, marker, name = topic.partition("/feeds/")
        section, _, ext = name.rpartition(".")
        if not marker or ext not in ("rss", "atom") or self.site.section_title(section) is None:
            return None
        return root, section, ext

    def render_topic(self, topic: str) -> tuple[bytes, str] | None:
        """The feed at `topic` now, advertising the hub (the hub pushes exactly what a fetch gets)."""
        found = self._topic_section(topic)
        if found is None:
            return None
        root, section, ext = found
        at, hub, site = self.clock(), root + HUB_PATH, self.outlet(root)
        if ext == "rss":
            return feeds.rss_feed(site, section, root, at, hub=hub).encode(), RSS_TYPE
        return feeds.atom_feed(site, section, root, at, hub=hub).encode(), ATOM_TYPE

    def topic_version(self, topic: str) -> int | None:
        """The newest article number of the feed at `topic`: it changes when an article is published."""
        found = self._topic_section(topic)
        return content.latest_number(self.site, found[1], self.clock()) if found else None

    async def section_page(self, request: Request) -> Response:
        section = request.path_params["section"]
        if self.site.section_title(section) is None:
            return _not_found()
        at = self.clock()
        body = pages.section_html(self.outlet(request), section, at).encode()
        return conditional_response(request, body, HTML_TYPE, feeds.feed_last_modified(self.site, section, at))

    async def article(self, request: Request) -> Response:
        section = request.path_params["section"]
        number_text, _, _ = request.path_params["page"].removesuffix(".html").partition("-")
        if not number_text.isdigit() or self.site.section_title(section) is None:
            return _not_found()
        number = int(number_text)
        if not content.is_published(self.site, section, number, self.clock()):
            return _not_found()
        site = self.outlet(request)
        item = content.make_article(site, section, number)
        body = pages.article_html(site, item, base_url(request)).encode()
        return conditional_response(request, body, HTML_TYPE, item.published, etag=item.etag)

    async def private(self, request: Request) -> Response:
        return Response(pages.private_html(request.url.path).encode(), media_type=HTML_TYPE)

    async def hostile_path(self, request: Request) -> Response:
        mode, name = request.path_params["mode"], request.path_params["name"]
        if mode not in MODES or not (is_feed_name(name) or name.endswith(".html")):
            return _not_found()
        root = base_url(request)
        at = self.clock()
        site = self.site

        def bodies() -> HostileBodies:
            newest = content.latest_articles(site, "world", at, 1)
            page = pages.article_html(site, newest[0], root) if newest else pages.home_html(site, at)
            feed_xml = feeds.rss_feed(site, "world", root, at, relative=mode == "relative-links")
            if mode == "relative-links":
                feed_xml = "\n".join(line for line in feed_xml.split("\n") if "<pubDate>" not in line)
            return HostileBodies(feed_xml=feed_xml, page_html=page)

        return await hostile_response(mode, name, self.hostile, bodies, request.is_disconnected)

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")


def _site_last_modified(site: content.DemoSiteConfig, at: datetime) -> datetime:
    return max(feeds.feed_last_modified(site, slug, at) for slug, _ in site.sections)


def _not_found() -> Response:
    return PlainTextResponse("Not Found\n", status_code=404)


@contextlib.contextmanager
def running_demo_site(
    app: ASGIApp, addresses: Sequence[str] = ("127.0.0.1",), port: int = 0, *, lifespan: bool = False
) -> Iterator[list[str]]:
    """Serve `app` with uvicorn in a background thread on free ports (or `port`); yields one base URL per address.

    For tests and benchmarks (any ASGI app: the MediaBeat app too, with `lifespan` so that it closes
    its services). Every address gets the same port when it is free there too.
    """
    sockets: list[socket.socket] = []
    for address in addresses:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, sockets[0].getsockname()[1] if sockets else port))
        sockets.append(sock)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on" if lifespan else "off",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, name="demo-site", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo site did not start")
            time.sleep(0.02)
        yield [f"http://{sock.getsockname()[0]}:{sock.getsockname()[1]}" for sock in sockets]
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        for sock in sockets:
            sock.close()
