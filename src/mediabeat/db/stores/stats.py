"""Scheduler statistics: totals in one aggregate query, per-task duration percentiles."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.tables import scheduler_empty_runs as empty_t
from mediabeat.db.tables import scheduler_run_count_deltas as deltas_t
from mediabeat.db.tables import scheduler_run_counts as counts_t
from mediabeat.db.tables import scheduler_task_runs as runs_t
from mediabeat.db.tables import scheduler_tasks as tasks_t
from mediabeat.domain.scheduler import FAILURE_STATUSES, RunStatus, SchedulerStats, TaskStats

# Percentiles describe recent behaviour: the last this-many finished runs of each task.
PERCENTILE_WINDOW = 200
# One statement, so the deltas it deletes are exactly the ones it adds; the deltas of deleted tasks
# are dropped. Migration 0006 keeps a copy for its downgrade.
FOLD_DELTAS = """
WITH folded AS (DELETE FROM scheduler_run_count_deltas RETURNING task_id, status, runs)
INSERT INTO scheduler_run_counts (task_id, status, runs)
SELECT task_id, status, SUM(runs) FROM folded
WHERE task_id IN (SELECT id FROM scheduler_tasks)
GROUP BY task_id, status
ORDER BY task_id, status
ON CONFLICT (task_id, status) DO UPDATE SET runs = scheduler_run_counts.runs + EXCLUDED.runs
"""


class StatsStore:
    """Reads the figures behind the stats cards."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def scheduler_stats(self, now: datetime) -> SchedulerStats:
        since = now - timedelta(hours=24)
        # Totals come from the trigger-kept counts (a few rows per task) plus the deltas not folded in
        # yet, read in one statement so that a concurrent fold is seen whole or not at all. Only
        # "last 24 h" reads the run history, as a range on the started_at index.
        by_status = sa.union_all(
            sa.select(counts_t.c.task_id, counts_t.c.status, counts_t.c.runs).where(counts_t.c.runs != 0),
            sa.select(deltas_t.c.task_id, deltas_t.c.status, deltas_t.c.runs),
        )
        last_24h = sa.select(sa.func.count()).select_from(runs_t).where(runs_t.c.started_at >= since)
        async with self.db.read() as conn:
            tallies = (await conn.execute(by_status)).all()
            runs_last_24h = int((await conn.execute(last_24h)).scalar_one())
            tasks = (await conn.execute(sa.select(tasks_t).order_by(tasks_t.c.name))).all()
            durations = await self._durations(conn, [t.id for t in tasks])
            empty, empty_24h = await _empty_runs(conn, since)
        status_totals: dict[str, int] = {}
        counts: dict[int, int] = {}
        known = {task.id for task in tasks}
        for task_id, status, n in tallies:
            if task_id not in known:  # deltas of a deleted task, until the next fold drops them
                continue
            status_totals[status] = status_totals.get(status, 0) + int(n)
            counts[int(task_id)] = counts.get(int(task_id), 0) + int(n)
        empty = {task_id: n for task_id, n in empty.items() if task_id in known}
        for task_id, n in empty.items():
            counts[task_id] = counts.get(task_id, 0) + n
        return SchedulerStats(
            total_tasks=len(tasks),
            enabled_tasks=sum(1 for task in tasks if task.enabled),
            total_runs=sum(status_totals.values()) + sum(empty.values()),
            empty_runs=sum(empty.values()),
            succeeded_runs=status_totals.get(RunStatus.SUCCEEDED, 0),
            failed_runs=sum(status_totals.get(status, 0) for status in sorted(FAILURE_STATUSES)),
            running_runs=status_totals.get(RunStatus.RUNNING, 0),
            runs_last_24h=runs_last_24h + sum(n for task_id, n in empty_24h.items() if task_id in known),
            tasks=[
                TaskStats(
                    task_id=task.id,
                    name=task.name,
                    enabled=task.enabled,
                    last_run_at=task.last_run_at,
                    last_status=RunStatus(task.last_status) if task.last_status else None,
                    next_run_at=task.next_run_at,
                    runs=counts.get(task.id, 0),
                    p50_ms=percentile(durations.get(task.id, []), 50),
                    p95_ms=percentile(durations.get(task.id, []), 95),
                    empty_runs=empty.get(task.id, 0),
                    empty_runs_24h=empty_24h.get(task.id, 0),
                    last_empty_run_at=task.last_empty_run_at,
                )
                for task in tasks
            ],
        )

    async def fold_run_counts(self) -> int:
        """Move the run-count deltas that PostgreSQL's triggers append into the counts; returns how many.

        Only the maintenance leader calls this, so it is the one writer of scheduler_run_counts
        there. On SQLite the triggers update the counts in place and there is nothing to fold.
        """
        if not self.db.is_postgres:
            return 0
        async with self.db.write() as conn:
            result = await conn.execute(sa.text(FOLD_DELTAS))
            return int(result.rowcount or 0)

    async def _durations(self, conn: Any, task_ids: list[int]) -> dict[int, list[int]]:
        """Each task's recent durations (one UNION ALL per 200 tasks)."""
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
        return durations


async def _empty_runs(conn: Any, since: datetime) -> tuple[dict[int, int], dict[int, int]]:
    """Runs that found nothing to do and were counted, not kept: per task in all, and since `since`.

    They are counted by the hour, so "since" takes in the whole hour `since` falls in.
    """
    hour = since.replace(minute=0, second=0, microsecond=0)
    recent = sa.func.sum(sa.case((empty_t.c.hour >= hour, empty_t.c.runs), else_=0))
    rows = await conn.execute(
        sa.select(empty_t.c.task_id, sa.func.sum(empty_t.c.runs), recent).group_by(empty_t.c.task_id)
    )
    total: dict[int, int] = {}
    last_24h: dict[int, int] = {}
    for task_id, runs, in_window in rows:
        total[int(task_id)] = int(runs or 0)
        last_24h[int(task_id)] = int(in_window or 0)
    return total, last_24h


def percentile(values: list[int] | Any, pct: int) -> float | None:
    """The pct-th percentile (inclusive method), or None for no values."""
    data = sorted(values)
    if not data:
        return None
    if len(data) == 1:
        return float(data[0])
    return float(statistics.quantiles(data, n=100, method="inclusive")[pct - 1])
