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
from mediabeat.schedule.freshness import FeedPolicy, FreshnessConfig
from mediabeat.scheduler.registry import HandlerRegistry
from mediabeat.settings import Settings
from mediabeat.tasks.base import RunContext, TaskHandler

if TYPE_CHECKING:
    from mediabeat.tasks.crawl_queue import CrawlQueue
    from mediabeat.tasks.rss_fetch import RssFetch


def build_crawler_handlers(settings: Settings, db: Database, clock: Clock) -> tuple[RssFetch, CrawlQueue]:
    from mediabeat.crawler.articles import ExtractionPool
    from mediabeat.crawler.http import ClientConfig, HostLimiter, SafeClient
    from mediabeat.db.stores.articles import ArticleStore
    from mediabeat.db.stores.feeds import FeedStore
    from mediabeat.db.stores.jobs import JobStore
    from mediabeat.tasks.crawl_queue import CrawlQueue
    from mediabeat.tasks.rss_fetch import RssFetch

    config = ClientConfig.from_settings(settings)
    # One per-host limiter for every run of both tasks in this process: an hourly fetch and a
    # crawl-queue run on the same host share its concurrency, delay and Crawl-delay.
    limiter = HostLimiter(concurrency=config.per_host_concurrency, delay=config.per_host_delay)

    def new_client() -> SafeClient:
        return SafeClient(config, limiter=limiter)

    fetch = RssFetch(
        feeds=FeedStore(db),
        jobs=JobStore(db),
        client_factory=new_client,
        freshness=freshness_config(settings),
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


def freshness_config(settings: Settings) -> FreshnessConfig:
    """The per-feed schedule's settings (MEDIABEAT_FEED_*)."""
    return FreshnessConfig(
        policy=FeedPolicy(settings.feed_policy),
        min_interval_s=settings.feed_min_interval,
        max_interval_s=settings.feed_max_interval,
        dormant_interval_s=settings.feed_dormant_interval,
        dormant_after=settings.feed_max_failures,
        polls_per_entry=settings.feed_polls_per_entry,
    )


def build_feed_fetch(settings: Settings, db: Database) -> RssFetch:
    """A feed fetcher of its own (no crawl-queue, no extraction pool): `feeds fetch ID` and the feed check."""
    from mediabeat.crawler.http import ClientConfig, SafeClient
    from mediabeat.db.stores.feeds import FeedStore
    from mediabeat.db.stores.jobs import JobStore
    from mediabeat.tasks.rss_fetch import RssFetch

    config = ClientConfig.from_settings(settings)
    return RssFetch(
        feeds=FeedStore(db),
        jobs=JobStore(db),
        client_factory=lambda: SafeClient(config),
        freshness=freshness_config(settings),
        concurrency=1,
        job_max_attempts=settings.job_max_attempts,
    )


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
        description="Fetch the feeds that are due (each has its own interval) and queue a job per new article.",
    )
    registry.register(
        "crawl_queue",
        crawl,
        description="Crawl queued articles: fetch each page (robots.txt first), extract the text and store it.",
    )
