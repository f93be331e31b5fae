"""Building the crawler's handlers for tests: real settings, loopback allowed, small limits."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mediabeat.clock import Clock
from mediabeat.db.engine import Database
from mediabeat.domain.scheduler import Trigger
from mediabeat.scheduler.registry import HandlerRegistry
from mediabeat.settings import Settings
from mediabeat.tasks.base import RunContext
from mediabeat.tasks.crawl_queue import CrawlQueue
from mediabeat.tasks.rss_fetch import RssFetch
from mediabeat.tasks.wiring import build_crawler_handlers, register_crawler

TEST_SETTINGS: dict[str, Any] = {
    "crawler_allow_private_networks": True,
    "crawler_connect_timeout": 2.0,
    "crawler_read_timeout": 1.0,
    "crawler_total_timeout": 3.0,
    "crawler_max_body_bytes": 1_000_000,
    "crawler_max_retry_wait": 1.0,
    "extraction_workers": 1,
    "node_id": "test-node",
}


def crawler_registry(db: Database, clock: Clock, **overrides: Any) -> HandlerRegistry:
    settings = Settings(**{**TEST_SETTINGS, **overrides})
    registry = HandlerRegistry()
    register_crawler(registry, settings, db, clock)
    return registry


def handlers(db: Database, clock: Clock, **overrides: Any) -> tuple[RssFetch, CrawlQueue]:
    return build_crawler_handlers(Settings(**{**TEST_SETTINGS, **overrides}), db, clock)


def ctx(now: datetime, name: str = "manual", run_id: int = 1, trigger: Trigger = Trigger.MANUAL) -> RunContext:
    return RunContext(
        run_id=run_id,
        task_name=name,
        trigger=trigger,
        scheduled_for=now,
        now=now,
        params={},
        log=logging.getLogger("mediabeat.test"),
    )


def as_dict(result: Mapping[str, Any]) -> dict[str, Any]:
    return dict(result)
