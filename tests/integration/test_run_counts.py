"""The trigger-kept run counts behind the statistics agree with the run history through inserts, updates and deletes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.stores.stats import StatsStore
from mediabeat.db.tables import scheduler_run_count_deltas, scheduler_run_counts, scheduler_task_runs, scheduler_tasks

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


async def counted(db: Database) -> dict[tuple[int, str], int]:
    """The counts as readers see them: the folded rows plus the deltas not folded yet."""
    parts = [scheduler_run_counts, scheduler_run_count_deltas]
    both = sa.union_all(*(sa.select(t.c.task_id, t.c.status, t.c.runs) for t in parts)).subquery()
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(both.c.task_id, both.c.status, sa.func.sum(both.c.runs))
            .group_by(both.c.task_id, both.c.status)
            .having(sa.func.sum(both.c.runs) != 0)
        )
        return {(int(t), s): int(n) for t, s, n in rows}


async def unfolded(db: Database) -> int:
    async with db.read() as conn:
        return int(
            (await conn.execute(sa.select(sa.func.count()).select_from(scheduler_run_count_deltas))).scalar_one()
        )


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

    # On PostgreSQL the triggers appended deltas; the fold moves them into the counts, totals unchanged.
    folded = await StatsStore(db).fold_run_counts()
    assert (folded > 0) == db.is_postgres
    assert await unfolded(db) == 0
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


async def test_deleting_a_task_with_runs_leaves_the_totals_right(db: Database) -> None:
    async with db.write() as conn:
        [first, second] = (
            await conn.execute(sa.select(scheduler_tasks.c.id).order_by(scheduler_tasks.c.id).limit(2))
        ).scalars()
        for task_id in (first, second):
            await conn.execute(
                scheduler_task_runs.insert(),
                [
                    {
                        "task_id": task_id,
                        "trigger": "manual",
                        "scheduled_for": NOW - timedelta(minutes=i),
                        "started_at": NOW,
                        "status": "succeeded",
                    }
                    for i in range(5)
                ],
            )
    store = StatsStore(db)
    await store.fold_run_counts()
    async with db.write() as conn:
        await conn.execute(scheduler_tasks.delete().where(scheduler_tasks.c.id == first))
    assert (await store.scheduler_stats(NOW)).total_runs == 5
    await store.fold_run_counts()
    assert await unfolded(db) == 0
    assert await counted(db) == await actual(db) == {(second, "succeeded"): 5}


async def test_a_claim_and_the_end_of_a_run_do_not_deadlock_on_the_counts(db: Database) -> None:
    """The lock order that deadlocked 0004's upsert triggers: A locks the task, B ends a run then
    updates the task, A inserts the task's next run. A must not wait for B."""
    if db.is_sqlite:
        pytest.skip("SQLite has one writer at a time")
    async with db.write() as conn:
        task_id = (await conn.execute(sa.select(scheduler_tasks.c.id).limit(1))).scalar_one()
        run_id = (
            await conn.execute(
                scheduler_task_runs.insert()
                .values(task_id=task_id, trigger="manual", scheduled_for=NOW, started_at=NOW, status="running")
                .returning(scheduler_task_runs.c.id)
            )
        ).scalar_one()
    b_updated_the_run = asyncio.Event()
    a_inserted = asyncio.Event()

    async def claim() -> None:
        async with db.write() as conn:
            await conn.execute(sa.select(scheduler_tasks.c.id).where(scheduler_tasks.c.id == task_id).with_for_update())
            await b_updated_the_run.wait()
            await asyncio.sleep(0.3)  # B is now waiting for the task row this transaction holds
            await conn.execute(
                scheduler_task_runs.insert().values(
                    task_id=task_id,
                    trigger="schedule",
                    scheduled_for=NOW + timedelta(minutes=1),
                    started_at=NOW,
                    status="running",
                )
            )
            a_inserted.set()

    async def end_run() -> None:
        async with db.write() as conn:
            await conn.execute(
                scheduler_task_runs.update().where(scheduler_task_runs.c.id == run_id).values(status="succeeded")
            )
            b_updated_the_run.set()
            await conn.execute(
                scheduler_tasks.update().where(scheduler_tasks.c.id == task_id).values(last_status="succeeded")
            )

    await asyncio.wait_for(asyncio.gather(claim(), end_run()), timeout=30)
    assert a_inserted.is_set()
    assert await counted(db) == await actual(db) == {(task_id, "running"): 1, (task_id, "succeeded"): 1}
