"""Wiring of the crawler's task handlers (hourly-rss-fetch, crawl-queue) from settings."""

from __future__ import annotations

from datetime import timedelta

from mediabeat.clock import Clock
from mediabeat.crawler.articles import ExtractionPool
from mediabeat.crawler.http import ClientConfig, HostLimiter, SafeClient
from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import JobStore
from mediabeat.scheduler.registry import HandlerRegistry
from mediabeat.settings import Settings
from mediabeat.tasks.crawl_queue import CrawlQueue
from mediabeat.tasks.rss_fetch import RssFetch


def register_crawler(registry: HandlerRegistry, settings: Settings, db: Database, clock: Clock) -> None:
    config = ClientConfig.from_settings(settings)

    def new_client() -> SafeClient:
        # One client per run; its per-host limiter covers every request of that run.
        return SafeClient(
            config, limiter=HostLimiter(concurrency=config.per_host_concurrency, delay=config.per_host_delay)
        )

    registry.register(
        "hourly_rss_fetch",
        RssFetch(
            feeds=FeedStore(db),
            jobs=JobStore(db),
            client_factory=new_client,
            max_failures=settings.feed_max_failures,
            concurrency=settings.feed_concurrency,
            job_max_attempts=settings.job_max_attempts,
        ),
    )
    registry.register(
        "crawl_queue",
        CrawlQueue(
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
        ),
    )
