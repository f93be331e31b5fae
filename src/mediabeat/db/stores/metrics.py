"""The figures behind /metrics: runs per task and status, the crawl queue, feeds by state, each task's last success."""

from __future__ import annotations

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.tables import feeds as feeds_t
from mediabeat.db.tables import media_crawl_jobs as jobs_t
from mediabeat.db.tables import scheduler_task_runs as runs_t
from mediabeat.db.tables import scheduler_tasks as tasks_t
from mediabeat.domain.metrics import MetricsSnapshot
from mediabeat.domain.scheduler import RunStatus


class MetricsStore:
    """Reads every figure /metrics shows in one read transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def snapshot(self) -> MetricsSnapshot:
        runs_query = (
            sa.select(tasks_t.c.name, runs_t.c.status, sa.func.count())
            .select_from(runs_t.join(tasks_t, runs_t.c.task_id == tasks_t.c.id))
            .group_by(tasks_t.c.name, runs_t.c.status)
        )
        success_query = (
            sa.select(tasks_t.c.name, tasks_t.c.enabled, sa.func.max(runs_t.c.finished_at))
            .select_from(
                tasks_t.outerjoin(runs_t, (runs_t.c.task_id == tasks_t.c.id) & (runs_t.c.status == RunStatus.SUCCEEDED))
            )
            .group_by(tasks_t.c.name, tasks_t.c.enabled)
        )
        jobs_query = sa.select(jobs_t.c.status, sa.func.count()).group_by(jobs_t.c.status)
        failing = feeds_t.c.consecutive_failures > 0
        feeds_query = sa.select(feeds_t.c.active, failing, sa.func.count()).group_by(feeds_t.c.active, failing)
        async with self.db.read() as conn:
            runs = {(name, status): int(n) for name, status, n in await conn.execute(runs_query)}
            success_rows = (await conn.execute(success_query)).all()
            jobs = {status: int(n) for status, n in await conn.execute(jobs_query)}
            feeds = {"ok": 0, "failing": 0, "disabled": 0}
            for active, has_failures, n in await conn.execute(feeds_query):
                feeds["disabled" if not active else "failing" if has_failures else "ok"] += int(n)
        return MetricsSnapshot(
            runs=runs,
            jobs=jobs,
            last_success={name: last for name, _, last in success_rows},
            enabled={name: bool(enabled) for name, enabled, _ in success_rows},
            feeds=feeds,
        )
