"""Wiring of the crawler's task handlers (hourly-rss-fetch, crawl-queue) from settings.

The crawler's modules (lxml, aiohttp, protego, the process pool) are imported when a
crawler task first runs, not when a process starts: `mediabeat worker` and every CLI
command start faster, and a process that never crawls never loads them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from mediabeat.clock import Clock
from mediabeat.db.engine import Database
from mediabeat.schedule.freshness import FeedPolicy, FreshnessConfig
from mediabeat.scheduler.registry import HandlerRegistry
from mediabeat.settings import Settings
from mediabeat.tasks.base import RunContext, TaskHandler

# A shared slot lease lasts this much longer than the longest fetch (its total timeout).
SHARED_LEASE_MARGIN_S = 10.0

if TYPE_CHECKING:
    from mediabeat.crawler.http import ClientConfig, HostLimiter
    from mediabeat.monitors.engine import MonitorEngine
    from mediabeat.tasks.crawl_queue import CrawlQueue
    from mediabeat.tasks.rss_fetch import RssFetch


def build_monitors(settings: Settings, db: Database, clock: Clock) -> MonitorEngine:
    """The monitor matcher (crawl-queue's on_stored hook) and deliveries, with their own guarded HTTP client."""
    from mediabeat.crawler.http import ClientConfig, SafeClient
    from mediabeat.monitors.delivery import MailSetup
    from mediabeat.monitors.engine import build_monitor_engine

    config = ClientConfig.from_settings(settings)
    server = settings.smtp_server
    return build_monitor_engine(
        db,
        clock,
        client_factory=lambda: SafeClient(config),
        mail=MailSetup(server=server, sender=settings.alert_email_from) if server is not None else None,
        public_url=settings.public_url,
    )


def build_limiter(settings: Settings, db: Database, clock: Clock, config: ClientConfig) -> HostLimiter:
    """The per-host limiter of a process's crawler tasks.

    One for every run of both tasks in this process: an hourly fetch and a crawl-queue run on the
    same host share its concurrency, delay and Crawl-delay. Behind it, the database keeps those
    limits across every process (a slot lease outlives the longest fetch); by default on
    PostgreSQL only: on SQLite each request's two write transactions queue for the one write lock
    with every other write (docs/benchmarks.md, "Shared politeness"). Long cool-downs (a
    Retry-After beyond a fetch's wait) are kept on the service's clock.
    """
    from mediabeat.crawler.http import HostLimiter, SharedLayer
    from mediabeat.db.stores.politeness import PolitenessStore

    shared = None
    share = settings.crawler_shared_politeness
    if db.is_postgres if share is None else share:
        lease = config.total_timeout + SHARED_LEASE_MARGIN_S
        shared = SharedLayer(PolitenessStore(db), holder=settings.resolved_node_id, lease=lease)
    return HostLimiter(
        concurrency=config.per_host_concurrency,
        delay=config.per_host_delay,
        shared=shared,
        max_wait=config.max_retry_wait,
        clock=lambda: clock.now().timestamp(),
    )


def build_crawler_handlers(
    settings: Settings, db: Database, clock: Clock, *, monitors: MonitorEngine | None = None
) -> tuple[RssFetch, CrawlQueue]:
    from mediabeat.crawler.articles import ExtractionPool
    from mediabeat.crawler.http import ClientConfig, SafeClient
    from mediabeat.db.stores.articles import ArticleStore
    from mediabeat.db.stores.feeds import FeedStore
    from mediabeat.db.stores.jobs import JobStore
    from mediabeat.db.stores.stories import StoryStore
    from mediabeat.db.stores.websub import WebSubStore
    from mediabeat.stories.clusterer import StoryClusterer
    from mediabeat.tasks.crawl_queue import CrawlQueue
    from mediabeat.tasks.rss_fetch import RssFetch
    from mediabeat.tasks.websub import HubRecorder

    config = ClientConfig.from_settings(settings)
    limiter = build_limiter(settings, db, clock, config)

    def new_client() -> SafeClient:
        return SafeClient(config, limiter=limiter)

    fetch = RssFetch(
        feeds=FeedStore(db),
        jobs=JobStore(db),
        client_factory=new_client,
        freshness=freshness_config(settings),
        concurrency=settings.feed_concurrency,
        job_max_attempts=settings.job_max_attempts,
        websub=HubRecorder(store=WebSubStore(db)),
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
        raw_html_max_bytes=settings.raw_html_max_bytes if settings.crawler_keep_raw_html else None,
        # Story clusters first (each stored batch is sketched and placed in the shared LSH index),
        # then the monitors' matching.
        on_stored=[
            StoryClusterer(store=StoryStore(db), clock=clock).on_stored,
            *([monitors.matcher.on_stored] if monitors is not None else []),
        ],
    )
    return fetch, crawl


def freshness_config(settings: Settings) -> FreshnessConfig:
    """The per-feed schedule's settings (MEDIABEAT_FEED_*)."""
    if settings.feed_polls_per_entry is not None:
        logging.getLogger(__name__).warning(
            "MEDIABEAT_FEED_POLLS_PER_ENTRY is deprecated: the old publishing-rate rule applies; "
            "unset it to use MEDIABEAT_FEED_TARGET_DELAY (%s s)",
            settings.feed_target_delay,
        )
    return FreshnessConfig(
        policy=FeedPolicy(settings.feed_policy),
        min_interval_s=settings.feed_min_interval,
        max_interval_s=settings.feed_max_interval,
        dormant_interval_s=settings.feed_dormant_interval,
        dormant_after=settings.feed_max_failures,
        target_delay_s=settings.feed_target_delay,
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


class _MonitorDeliveries(_Lazy):
    """The monitor-deliveries handler; closing it waits for deliveries that new matches started, built or not."""

    def __init__(self, build: Callable[[], Any], engines: list[MonitorEngine]) -> None:
        super().__init__(build)
        self.engines = engines

    async def aclose(self) -> None:
        for engine in self.engines:
            await engine.drain()


def register_crawler(registry: HandlerRegistry, settings: Settings, db: Database, clock: Clock) -> None:
    built: list[tuple[Any, Any]] = []
    engines: list[MonitorEngine] = []

    def engine() -> MonitorEngine:
        if not engines:
            engines.append(build_monitors(settings, db, clock))
        return engines[0]

    def pair() -> tuple[Any, Any]:
        if not built:
            built.append(build_crawler_handlers(settings, db, clock, monitors=engine()))
        return built[0]

    def deliveries() -> Any:
        from mediabeat.db.stores.stories import StoryStore
        from mediabeat.stories.clusterer import StoryClusterer
        from mediabeat.tasks.monitor_deliveries import MonitorDeliveriesTask

        return MonitorDeliveriesTask(engine(), stories=StoryClusterer(store=StoryStore(db), clock=clock))

    def follower() -> Any:
        from mediabeat.db.stores.feeds import FeedStore
        from mediabeat.tasks.feed_follow import FeedFollower

        return FeedFollower(pair()[0], feeds=FeedStore(db), clock=clock, follow_seconds=settings.feed_follow_seconds)

    fetch: TaskHandler = _Lazy(follower)
    crawl: TaskHandler = _Lazy(lambda: pair()[1])
    registry.register(
        "monitor_deliveries",
        _MonitorDeliveries(deliveries, engines),
        description="Cluster and match what a crawl hook missed; send due monitor webhooks, mail, digests and spike "
        "alerts.",
    )
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


def build_websub_renewal(settings: Settings, db: Database) -> Any:
    """The websub-renew handler, with a client of its own (hubs are not crawled hosts)."""
    from mediabeat.crawler.http import ClientConfig, SafeClient
    from mediabeat.db.stores.websub import WebSubStore
    from mediabeat.tasks.websub import WebSubRenewal

    config = ClientConfig.from_settings(settings)
    return WebSubRenewal(
        store=WebSubStore(db),
        client_factory=lambda: SafeClient(config),
        public_url=settings.public_url,
        lease_seconds=settings.websub_lease_seconds,
        max_attempts=settings.websub_verify_attempts,
        retry_seconds=settings.websub_retry_seconds,
    )


def register_websub(registry: HandlerRegistry, settings: Settings, db: Database) -> None:
    renew: TaskHandler = _Lazy(lambda: build_websub_renewal(settings, db))
    registry.register(
        "websub_renew",
        renew,
        description="Subscribe to the WebSub hubs that feeds advertise, renew leases before they end, "
        "and give up on hubs that never verify.",
    )
