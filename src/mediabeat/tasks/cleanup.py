"""nightly-cleanup: delete old crawl jobs, old task runs and old kept raw HTML, in batches; keep search's side
indexes up (the words ranking leaves out on SQLite, the newest articles' GIN index on PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from mediabeat.db.stores.retention import RetentionStore
from mediabeat.db.stores.search import SearchStore
from mediabeat.domain.search import cache_advice
from mediabeat.tasks.base import RunContext


class NightlyCleanup:
    """Deletes crawl jobs older than job_retention_days, runs older than run_retention_days and kept raw HTML
    fetched more than raw_html_retention_days ago. With a `search` store it then keeps search's side indexes up:
    on SQLite it counts again the words that ranking leaves out (SearchStore.count_weightless_words) and lists
    the common ones (count_common_words), on PostgreSQL it moves the newest articles' GIN index up when due
    (SearchStore.refresh_recent_index)."""

    def __init__(
        self,
        *,
        store: RetentionStore,
        job_retention_days: int,
        run_retention_days: int,
        batch_size: int,
        raw_html_retention_days: int = 30,
        search: SearchStore | None = None,
    ) -> None:
        self.store = store
        self.search = search
        self.job_retention = timedelta(days=job_retention_days)
        self.run_retention = timedelta(days=run_retention_days)
        self.raw_html_retention = timedelta(days=raw_html_retention_days)
        self.batch_size = batch_size

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        jobs = await self._delete_all(self.store.delete_jobs_before, ctx.now - self.job_retention)
        runs = await self._delete_all(self.store.delete_runs_before, ctx.now - self.run_retention)
        raw = await self._delete_all(self.store.delete_raw_pages_before, ctx.now - self.raw_html_retention)
        alerts = await self._delete_all(self.store.delete_alerts_before, ctx.now - self.run_retention)
        search = {} if self.search is None else await self.search.upkeep()
        if advice := cache_advice(search):
            ctx.log.warning("%s", advice)
        if "search_recent_index" in search:  # not an error: the index still serves (docs/deploy.md)
            ctx.log.warning("%s", search["search_recent_index"])
        elif search.get("search_recent_index_floor") is not None:
            ctx.log.info(
                "nightly-cleanup rebuilt the newest articles' search index from id %d",
                search["search_recent_index_floor"],
            )
        ctx.log.info(
            "nightly-cleanup deleted %d crawl jobs, %d task runs, %d raw HTML pages and %d task alerts",
            jobs,
            runs,
            raw,
            alerts,
        )
        return {
            "crawl_jobs_deleted": jobs,
            "task_runs_deleted": runs,
            "raw_pages_deleted": raw,
            "task_alerts_deleted": alerts,
            **search,
            "job_retention_days": self.job_retention.days,
            "run_retention_days": self.run_retention.days,
            "raw_html_retention_days": self.raw_html_retention.days,
        }

    async def _delete_all(self, delete_batch: Callable[..., Awaitable[int]], cutoff: datetime) -> int:
        total = 0
        while True:
            deleted = await delete_batch(cutoff, batch_size=self.batch_size)
            total += deleted
            if deleted < self.batch_size:
                return total
            await asyncio.sleep(0)  # let heartbeats and the loop through between batches
