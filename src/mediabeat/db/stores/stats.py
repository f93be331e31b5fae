"""Scheduler statistics: totals in one aggregate query, per-task duration percentiles."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.stores.records import SchedulerStats, TaskStats
from mediabeat.db.tables import scheduler_task_runs as runs_t
from mediabeat.db.tables import scheduler_tasks as tasks_t

FAILED_STATUSES = ("failed", "timed_out", "abandoned")
# Percentiles describe recent behaviour: the last this-many finished runs of each task.
PERCENTILE_WINDOW = 200


class StatsStore:
    """Reads the figures behind the stats cards."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def scheduler_stats(self, now: datetime) -> SchedulerStats:
        since = now - timedelta(hours=24)
        totals = sa.select(
            sa.select(sa.func.count()).select_from(tasks_t).scalar_subquery().label("total_tasks"),
            sa.select(sa.func.count())
            .select_from(tasks_t)
            .where(tasks_t.c.enabled.is_(True))
            .scalar_subquery()
            .label("enabled_tasks"),
            sa.select(sa.func.count()).select_from(runs_t).scalar_subquery().label("total_runs"),
            _count_where(runs_t.c.status == "succeeded").label("succeeded_runs"),
            _count_where(runs_t.c.status.in_(FAILED_STATUSES)).label("failed_runs"),
            _count_where(runs_t.c.status == "running").label("running_runs"),
            _count_where(runs_t.c.started_at >= since).label("runs_last_24h"),
        )
        async with self.db.read() as conn:
            row = (await conn.execute(totals)).one()
            tasks = (await conn.execute(sa.select(tasks_t).order_by(tasks_t.c.name))).all()
            counts, durations = await self._per_task(conn, [t.id for t in tasks])
        return SchedulerStats(
            total_tasks=row.total_tasks,
            enabled_tasks=row.enabled_tasks,
            total_runs=row.total_runs,
            succeeded_runs=row.succeeded_runs,
            failed_runs=row.failed_runs,
            running_runs=row.running_runs,
            runs_last_24h=row.runs_last_24h,
            tasks=[
                TaskStats(
                    task_id=task.id,
                    name=task.name,
                    enabled=task.enabled,
                    last_run_at=task.last_run_at,
                    last_status=task.last_status,
                    next_run_at=task.next_run_at,
                    runs=counts.get(task.id, 0),
                    p50_ms=percentile(durations.get(task.id, []), 50),
                    p95_ms=percentile(durations.get(task.id, []), 95),
                )
                for task in tasks
            ],
        )

    async def _per_task(self, conn: Any, task_ids: list[int]) -> tuple[dict[int, int], dict[int, list[int]]]:
        """Run counts per task (one grouped query) and each task's recent durations (one UNION ALL)."""
        counts = {
            int(task_id): int(n)
            for task_id, n in await conn.execute(
                sa.select(runs_t.c.task_id, sa.func.count()).group_by(runs_t.c.task_id)
            )
        }
        durations: dict[int, list[int]] = {}
        for chunk in [task_ids[i : i + 200] for i in range(0, len(task_ids), 200)]:
            recent = [
                sa.select(runs_t.c.task_id, runs_t.c.duration_ms)
                .where(runs_t.c.task_id == task_id, runs_t.c.duration_ms.is_not(None))
                .order_by(runs_t.c.started_at.desc())
                .limit(PERCENTILE_WINDOW)
                .subquery()
                .select()
                for task_id in chunk
            ]
            for task_id, duration in await conn.execute(sa.union_all(*recent)):
                durations.setdefault(int(task_id), []).append(int(duration))
        return counts, durations


def _count_where(condition: sa.ColumnElement[bool]) -> Any:
    return sa.select(sa.func.count()).select_from(runs_t).where(condition).scalar_subquery()


def percentile(values: list[int] | Any, pct: int) -> float | None:
    """The pct-th percentile (inclusive method), or None for no values."""
    data = sorted(values)
    if not data:
        return None
    if len(data) == 1:
        return float(data[0])
    return float(statistics.quantiles(data, n=100, method="inclusive")[pct - 1])
