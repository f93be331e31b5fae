"""Priority under the per-node run limit, a burst larger than the limit, and run ends written in batches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from mediabeat.clock import FakeClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.run_ends import RunEndStore
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.db.tables import scheduler_tasks
from mediabeat.domain.scheduler import RunFilter, RunStatus, TaskValidationError
from mediabeat.scheduler.run_ends import RunEndWriter
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
    assert service.due.backlog == 1  # "low" is claimed too, queued on this node
    blocking.release()
    await service.wait_idle(within=10)  # it starts as soon as the slot frees
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
    in_flight, most = 0, 0

    async def counting(ctx: RunContext) -> dict[str, object]:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0)  # let others start meanwhile, if the limit allowed it
        in_flight -= 1
        return await handler(ctx)

    service, loop = build_test_scheduler(db, clock=clock, handlers={"burst": counting}, timings=timings)
    # One claim takes the whole burst: 32 start, the rest queue on this node and start as slots free.
    assert (await loop.step()).started == timings.max_concurrent
    await service.wait_idle(within=60)
    assert len(handler.calls) == 1000
    assert len({c.task_name for c in handler.calls}) == 1000  # each occurrence once
    assert most == timings.max_concurrent  # never more than the limit at once
    runs = await service.list_runs(RunFilter(status=RunStatus.SUCCEEDED), limit=2000)
    assert len(runs) == 1000
    async with db.read() as conn:
        running = await conn.execute(sa.text("SELECT COUNT(*) FROM scheduler_task_runs WHERE status = 'running'"))
        assert running.scalar_one() == 0


class StalledEnds(RunEndStore):
    """A database that takes the run ends but never commits them (the node dies before it would)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.batches: list[list[int]] = []
        self.hang = asyncio.Event()

    async def record_run_ends(self, ends):  # type: ignore[no-untyped-def]
        self.batches.append([end.run_id for end in ends])
        await self.hang.wait()
        return await super().record_run_ends(ends)


async def test_a_slot_frees_before_the_end_is_written_and_an_unwritten_end_is_reaped(db: Database) -> None:
    await only_cleanup_seeded(db)
    store = SchedulerStore(db)
    await store.update_task(1, {"enabled": False}, START)
    for name in ("a", "b", "c"):
        await store.create_task({"name": name, "handler": "quick", "cron": "0 0 1 1 *"}, START)
    clock = FakeClock(START)
    handler = RecordingHandler()
    service, loop = build_test_scheduler(
        db, clock=clock, handlers={"quick": handler}, timings=SchedulerTimings(max_concurrent=3)
    )
    stalled = StalledEnds(db)
    service.runner.ends = RunEndWriter(stalled)
    assert (await loop.step()).started == 3
    async with asyncio.timeout(10):
        while len(handler.calls) < 3 or sum(map(len, stalled.batches)) < 3:
            await asyncio.sleep(0.01)
    # The three handlers returned: their slots are free, though no end is written yet...
    assert service.free_slots == 3
    assert len(stalled.batches) == 1  # ...and the three ends go in one batch.
    # Until it is written a run is still running, and still this node's to heartbeat.
    running = await service.list_runs(RunFilter(status=RunStatus.RUNNING), limit=10)
    assert sorted(r.id for r in running) == sorted(service.active_run_ids) and len(running) == 3
    # The node dies here. Another node's reaper settles the runs once the heartbeats stop.
    other, _ = build_test_scheduler(db, clock=clock, handlers={}, node_id="other-node")
    clock.advance(21)
    reaped = await other.reap_abandoned()
    assert sorted(r.id for r in reaped) == sorted(r.id for r in running)
    assert {r.status for r in reaped} == {RunStatus.ABANDONED}
    stalled.hang.set()  # (let the test's node finish: a late end still records the true outcome)
    await service.wait_idle(within=10)
