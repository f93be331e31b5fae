"""Priority under the per-node run limit, and a burst larger than the limit, on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from mediabeat.clock import FakeClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.db.tables import scheduler_tasks
from mediabeat.domain.scheduler import RunFilter, RunStatus, TaskValidationError
from mediabeat.scheduler.service import SchedulerTimings, TaskChanges
from mediabeat.tasks.base import RunContext
from mediabeat.testing import BlockingHandler, RecordingHandler, build_test_scheduler
from tests.integration.seeds import only_cleanup_seeded

START = datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC)


async def test_with_one_slot_the_higher_priority_task_starts_first_though_due_later(db: Database) -> None:
    await only_cleanup_seeded(db)
    store = SchedulerStore(db)
    await store.update_task(1, {"enabled": False}, START)  # the seeded cleanup task
    clock = FakeClock(START)
    order: list[str] = []
    blocking = BlockingHandler()

    async def recording(ctx: RunContext) -> dict[str, object]:
        order.append(ctx.task_name)
        return await blocking(ctx)

    for name in ("low", "high"):
        # Once a year: no other occurrence falls between the due times set below and now.
        await store.create_task({"name": name, "handler": "work", "cron": "0 0 1 1 *"}, START)
    service, loop = build_test_scheduler(
        db, clock=clock, handlers={"work": recording}, timings=SchedulerTimings(max_concurrent=1)
    )
    low = await service.get_task_by_name("low")
    high = await service.get_task_by_name("high")
    await service.update_task(high.id, TaskChanges(priority=10))
    # Both due at once, "low" even 10 s earlier: priority decides before the due time does.
    await store.update_task(low.id, {"next_run_at": START - timedelta(seconds=20), "last_run_at": START}, START)
    await store.update_task(high.id, {"next_run_at": START - timedelta(seconds=10), "last_run_at": START}, START)

    assert (await loop.step()).started == 1
    assert order == ["high"]
    blocking.release()
    await service.wait_idle(within=10)
    assert (await loop.step()).started == 1
    await service.wait_idle(within=10)
    assert order == ["high", "low"]
    assert (await service.get_task_by_name("high")).priority == 10


async def test_priority_is_checked(db: Database) -> None:
    service, _ = build_test_scheduler(db, clock=FakeClock(START), handlers={})
    task = (await service.list_tasks())[0]
    try:
        await service.update_task(task.id, TaskChanges(priority=5000))
    except TaskValidationError as exc:
        assert exc.field == "priority" and "-1000 and 1000" in str(exc)
    else:
        raise AssertionError("a priority out of range was accepted")


async def test_a_burst_of_1000_due_occurrences_all_start_at_the_default_limit(db: Database) -> None:
    await only_cleanup_seeded(db)
    await SchedulerStore(db).update_task(1, {"enabled": False}, START)
    clock = FakeClock(START)
    handler = RecordingHandler()
    async with db.write() as conn:
        await conn.execute(
            scheduler_tasks.insert(),
            [
                {
                    "name": f"burst-{i:04d}",
                    "handler": "burst",
                    "cron": "0 * * * *",
                    "overlap_policy": "allow",
                    "next_run_at": START - timedelta(seconds=1),
                    "last_run_at": START - timedelta(hours=1),
                    "created_at": START,
                    "updated_at": START,
                }
                for i in range(1000)
            ],
        )
    timings = SchedulerTimings()
    service, loop = build_test_scheduler(db, clock=clock, handlers={"burst": handler}, timings=timings)
    steps = 0
    while len(handler.calls) < 1000 and steps < 200:
        started = (await loop.step()).started
        assert started <= timings.max_concurrent  # never more than the limit at once
        await service.wait_idle(within=30)
        steps += 1
    assert len(handler.calls) == 1000
    assert len({c.task_name for c in handler.calls}) == 1000  # each occurrence once
    assert steps >= 1000 // timings.max_concurrent
    runs = await service.list_runs(RunFilter(status=RunStatus.SUCCEEDED), limit=2000)
    assert len(runs) == 1000
    async with db.read() as conn:
        running = await conn.execute(sa.text("SELECT COUNT(*) FROM scheduler_task_runs WHERE status = 'running'"))
        assert running.scalar_one() == 0
