"""Deleting old history in bounded batches, so cleanup never holds a long lock."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.tables import article_raw_pages as raw_t
from mediabeat.db.tables import media_crawl_jobs as jobs_t
from mediabeat.db.tables import scheduler_empty_runs as empty_t
from mediabeat.db.tables import scheduler_task_runs as runs_t
from mediabeat.db.tables import task_alerts as alerts_t


class RetentionStore:
    """Batch deletes of finished crawl jobs and task runs past their retention."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def delete_jobs_before(self, cutoff: datetime, *, batch_size: int) -> int:
        """Delete one batch of crawl jobs created before `cutoff` that are not running."""
        return await self._delete_batch(
            jobs_t, (jobs_t.c.created_at < cutoff) & (jobs_t.c.status != "running"), batch_size
        )

    async def delete_runs_before(self, cutoff: datetime, *, batch_size: int) -> int:
        """Delete one batch of finished runs that started before `cutoff`, and the counts of empty runs before it.

        The counts (runs that found nothing to do, per task and hour) age out with the runs they stand for.
        """
        async with self.db.write() as conn:
            await conn.execute(empty_t.delete().where(empty_t.c.hour < cutoff))
        return await self._delete_batch(
            runs_t, (runs_t.c.started_at < cutoff) & (runs_t.c.status != "running"), batch_size
        )

    async def delete_alerts_before(self, cutoff: datetime, *, batch_size: int) -> int:
        """Delete one batch of task alerts raised before `cutoff` (they are kept as long as runs)."""
        return await self._delete_batch(alerts_t, alerts_t.c.created_at < cutoff, batch_size)

    async def _delete_batch(self, table: sa.Table, condition: sa.ColumnElement[bool], batch_size: int) -> int:
        async with self.db.write() as conn:
            batch = sa.select(table.c.id).where(condition).order_by(table.c.id).limit(batch_size).scalar_subquery()
            result = await conn.execute(table.delete().where(table.c.id.in_(batch)))
            return int(result.rowcount or 0)

    async def delete_raw_pages_before(self, cutoff: datetime, *, batch_size: int) -> int:
        """Delete one batch of kept raw HTML fetched before `cutoff` (the articles stay)."""
        async with self.db.write() as conn:
            batch = (
                sa.select(raw_t.c.article_id)
                .where(raw_t.c.fetched_at < cutoff)
                .order_by(raw_t.c.article_id)
                .limit(batch_size)
                .scalar_subquery()
            )
            result = await conn.execute(raw_t.delete().where(raw_t.c.article_id.in_(batch)))
            return int(result.rowcount or 0)
