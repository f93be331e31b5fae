"""The trigger-kept run counts behind the statistics agree with the run history through inserts, updates and deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.stores.stats import StatsStore
from mediabeat.db.tables import scheduler_run_counts, scheduler_task_runs, scheduler_tasks

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


async def counted(db: Database) -> dict[tuple[int, str], int]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(scheduler_run_counts.c.task_id, scheduler_run_counts.c.status, scheduler_run_counts.c.runs).where(
                scheduler_run_counts.c.runs != 0
            )
        )
        return {(int(t), s): int(n) for t, s, n in rows}


async def actual(db: Database) -> dict[tuple[int, str], int]:
    runs = scheduler_task_runs
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(runs.c.task_id, runs.c.status, sa.func.count()).group_by(runs.c.task_id, runs.c.status)
        )
        return {(int(t), s): int(n) for t, s, n in rows}


async def test_counts_follow_inserts_status_changes_and_deletes(db: Database) -> None:
    async with db.write() as conn:
        task_id = (await conn.execute(sa.select(scheduler_tasks.c.id).limit(1))).scalar_one()
        await conn.execute(
            scheduler_task_runs.insert(),
            [
                {
                    "task_id": task_id,
                    "trigger": "manual",
                    "scheduled_for": NOW - timedelta(hours=i),
                    "started_at": NOW - timedelta(hours=i),
                    "status": "running" if i < 3 else ("failed" if i % 4 == 0 else "succeeded"),
                    "duration_ms": None if i < 3 else 10 * i,
                }
                for i in range(40)
            ],
        )
    assert await counted(db) == await actual(db)

    async with db.write() as conn:
        await conn.execute(
            scheduler_task_runs.update().where(scheduler_task_runs.c.status == "running").values(status="abandoned")
        )
        # An update that does not change the status leaves the counts alone.
        await conn.execute(
            scheduler_task_runs.update().where(scheduler_task_runs.c.status == "failed").values(error="x")
        )
    assert await counted(db) == await actual(db)

    async with db.write() as conn:
        await conn.execute(
            scheduler_task_runs.delete().where(scheduler_task_runs.c.started_at < NOW - timedelta(hours=30))
        )
    assert await counted(db) == await actual(db)

    stats = await StatsStore(db).scheduler_stats(NOW)
    real = await actual(db)
    assert stats.total_runs == sum(real.values()) == 31
    assert stats.succeeded_runs == sum(n for (_, s), n in real.items() if s == "succeeded")
    assert stats.failed_runs == sum(n for (_, s), n in real.items() if s in ("failed", "abandoned"))
    assert stats.running_runs == 0
    assert stats.runs_last_24h == 25  # started at NOW - 0 h ... NOW - 24 h
    [task] = [t for t in stats.tasks if t.task_id == task_id]
    assert task.runs == 31
