"""Wiring of the crawler's task handlers (hourly-rss-fetch, crawl-queue) from settings.

The crawler's modules (lxml, aiohttp, protego, the process pool) are imported when a
crawler task first runs, not when a process starts: `mediabeat worker` and every CLI
command start faster, and a process that never crawls never loads them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from mediabeat.clock import Clock
from mediabeat.db.engine import Database
from mediabeat.scheduler.registry import HandlerRegistry
from mediabeat.settings import Settings
from mediabeat.tasks.base import RunContext, TaskHandler

# A shared slot lease lasts this much longer than the longest fetch (its total timeout).
SHARED_LEASE_MARGIN_S = 10.0

if TYPE_CHECKING:
    from mediabeat.tasks.crawl_queue import CrawlQueue
    from mediabeat.tasks.rss_fetch import RssFetch


def build_crawler_handlers(settings: Settings, db: Database, clock: Clock) -> tuple[RssFetch, CrawlQueue]:
    from mediabeat.crawler.articles import ExtractionPool
    from mediabeat.crawler.http import ClientConfig, HostLimiter, SafeClient, SharedLayer
    from mediabeat.db.stores.articles import ArticleStore
    from mediabeat.db.stores.feeds import FeedStore
    from mediabeat.db.stores.jobs import JobStore
    from mediabeat.db.stores.politeness import PolitenessStore
    from mediabeat.tasks.crawl_queue import CrawlQueue
    from mediabeat.tasks.rss_fetch import RssFetch

    config = ClientConfig.from_settings(settings)
    # One per-host limiter for every run of both tasks in this process: an hourly fetch and a
    # crawl-queue run on the same host share its concurrency, delay and Crawl-delay. Behind it, the
    # database keeps those limits across every process (a slot lease outlives the longest fetch); by
    # default on PostgreSQL only: on SQLite each request's two write transactions queue for the one
    # write lock with every other write (docs/benchmarks.md, "Shared politeness").
    shared = None
    share = settings.crawler_shared_politeness
    if db.is_postgres if share is None else share:
        lease = config.total_timeout + SHARED_LEASE_MARGIN_S
        shared = SharedLayer(PolitenessStore(db), holder=settings.resolved_node_id, lease=lease)
    limiter = HostLimiter(concurrency=config.per_host_concurrency, delay=config.per_host_delay, shared=shared)

    def new_client() -> SafeClient:
        return SafeClient(config, limiter=limiter)

    fetch = RssFetch(
        feeds=FeedStore(db),
        jobs=JobStore(db),
        client_factory=new_client,
        max_failures=settings.feed_max_failures,
        concurrency=settings.feed_concurrency,
        job_max_attempts=settings.job_max_attempts,
    )
    crawl = CrawlQueue(
        jobs=JobStore(db),
        articles=ArticleStore(db),
        client_factory=new_client,
        pool=ExtractionPool(settings.extraction_workers),
        clock=clock,
        node_id=settings.resolved_node_id,
        user_agent=config.user_agent,
        batch=settings.crawl_batch,
        concurrency=settings.crawl_concurrency,
        lease=timedelta(seconds=settings.crawl_lease_seconds),
    )
    return fetch, crawl


class _Lazy:
    """A handler that builds the real one on its first run."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self.handler: Any = None

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        if self.handler is None:
            self.handler = self._build()
        result: Mapping[str, Any] = await self.handler(ctx)
        return result

    async def aclose(self) -> None:
        close = getattr(self.handler, "aclose", None)
        if close is not None:
            await close()


def register_crawler(registry: HandlerRegistry, settings: Settings, db: Database, clock: Clock) -> None:
    built: list[tuple[Any, Any]] = []

    def pair() -> tuple[Any, Any]:
        if not built:
            built.append(build_crawler_handlers(settings, db, clock))
        return built[0]

    fetch: TaskHandler = _Lazy(lambda: pair()[0])
    crawl: TaskHandler = _Lazy(lambda: pair()[1])
    registry.register(
        "hourly_rss_fetch",
        fetch,
        description="Fetch every active feed that is due and queue a crawl job for each new article.",
    )
    registry.register(
        "crawl_queue",
        crawl,
        description="Crawl queued articles: fetch each page (robots.txt first), extract the text and store it.",
    )
