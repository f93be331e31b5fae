"""A node's backlog: due tasks claimed beyond the free run slots, queued, started as slots free.

Priority order, a node that dies holding a backlog (the reaper gives it back, the misfire policy
decides), the pause, a cancel of a queued run, and the hold after which a backlog goes back.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from mediabeat.clock import FakeClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.domain.scheduler import RunFilter, RunRecord, RunStatus
from mediabeat.scheduler.service import SchedulerService, SchedulerTimings
from mediabeat.tasks.base import RunContext
from mediabeat.testing import BlockingHandler, build_test_scheduler
from tests.integration.seeds import only_cleanup_seeded

START = datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC)
ONE_SLOT = SchedulerTimings(max_concurrent=1)


class Gate:
    """A handler that records the order runs start in and holds every run until released."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.blocking = BlockingHandler()

    async def __call__(self, ctx: RunContext) -> dict[str, object]:
        self.order.append(ctx.task_name)
        return dict(await self.blocking(ctx))


async def due_tasks(db: Database, names: dict[str, dict[str, object]]) -> None:
    """Tasks due 1 s before START (once a year: no other occurrence falls in the test), the cleanup off."""
    await only_cleanup_seeded(db)
    store = SchedulerStore(db)
    await store.update_task(1, {"enabled": False}, START)
    for name, values in names.items():
        await store.create_task(
            {
                "name": name,
                "handler": "work",
                "cron": "0 9 2 3 *",
                "next_run_at": START - timedelta(seconds=1),
                "last_run_at": START - timedelta(days=365),
                **values,
            },
            START,
        )


async def runs_of(service: SchedulerService) -> dict[str, RunRecord]:
    return {r.task: r for r in await service.list_runs(RunFilter(), limit=50) if r.trigger == "schedule"}


async def test_the_backlog_starts_highest_priority_first_as_slots_free(db: Database) -> None:
    await due_tasks(db, {"low": {"priority": -5}, "mid": {}, "high": {"priority": 5}, "top": {"priority": 9}})
    gate = Gate()
    service, loop = build_test_scheduler(db, clock=FakeClock(START), handlers={"work": gate}, timings=ONE_SLOT)
    assert (await loop.step()).started == 1  # one claim: one run starts, three wait on this node
    assert gate.order == ["top"] and service.due.backlog == 3
    runs = await runs_of(service)
    assert {name: r.status for name, r in runs.items()} == {
        "top": "running",
        "high": "queued",
        "mid": "queued",
        "low": "queued",
    }
    gate.blocking.release()
    await service.wait_idle(within=10)  # each starts as the slot frees, without a loop step
    assert gate.order == ["top", "high", "mid", "low"]
    runs = await runs_of(service)
    assert {r.status for r in runs.values()} == {RunStatus.SUCCEEDED}
    # The start of a queued run is written when it starts, not when it was claimed.
    assert all(r.heartbeat_at is not None for r in runs.values())


async def test_a_node_that_dies_with_a_backlog_loses_no_occurrence(db: Database) -> None:
    await due_tasks(
        db,
        {
            "busy": {"priority": 1},
            "once": {"misfire_policy": "run_once"},
            "skips": {"misfire_policy": "skip"},
            "catches-up": {"misfire_policy": "catch_up"},
        },
    )
    clock = FakeClock(START)
    gate = Gate()
    a, loop_a = build_test_scheduler(db, clock=clock, handlers={"work": gate}, timings=ONE_SLOT, node_id="a")
    assert (await loop_a.step()).started == 1
    assert gate.order == ["busy"] and a.due.backlog == 3
    # Node a dies here: no more heartbeats. Past the stale time and the misfire grace, b's reaper runs.
    clock.advance(90)
    b_gate = Gate()
    b_gate.blocking.release()
    b, loop_b = build_test_scheduler(db, clock=clock, handlers={"work": b_gate}, node_id="b")
    reaped = await b.reap_abandoned()
    assert [r.task for r in reaped] == ["busy"]  # it had started: abandoned, as before
    given_back = await b.list_runs(RunFilter(status=RunStatus.QUEUED), limit=10)
    assert len(given_back) == 3 and {r.node_id for r in given_back} == {None}
    # Node b, with free slots, takes them; each task's misfire policy decides, as if it had just come due.
    await loop_b.step()
    await b.wait_idle(within=10)
    assert sorted(b_gate.order) == ["catches-up", "once"]
    runs = await runs_of(b)
    assert runs["once"].status == "succeeded" and runs["once"].node_id == "b"
    assert runs["catches-up"].status == "succeeded"
    assert runs["skips"].status == "skipped" and "misfire policy skip" in (runs["skips"].error or "")
    assert runs["busy"].status == "abandoned"
    left = [r for r in await b.list_runs(RunFilter(), limit=50) if r.status in ("running", "queued")]
    assert left == []
    gate.blocking.release()  # (let the dead node's handler end: a late end still records its outcome)
    await a.wait_idle(within=10)
    assert sorted(gate.order) == ["busy"]  # node a never started its backlog


async def test_a_backlog_given_back_within_the_grace_runs_on_another_node(db: Database) -> None:
    await due_tasks(db, {"busy": {"priority": 1}, "skips": {"misfire_policy": "skip"}})
    clock = FakeClock(START)
    gate = Gate()
    a, loop_a = build_test_scheduler(db, clock=clock, handlers={"work": gate}, timings=ONE_SLOT, node_id="a")
    await loop_a.step()
    clock.advance(21)  # stale (20 s) but within the misfire grace (60 s): it simply runs elsewhere
    b_gate = Gate()
    b_gate.blocking.release()
    b, loop_b = build_test_scheduler(db, clock=clock, handlers={"work": b_gate}, node_id="b")
    await b.reap_abandoned()
    await loop_b.step()
    await b.wait_idle(within=10)
    assert b_gate.order == ["skips"]
    gate.blocking.release()
    await a.wait_idle(within=10)


async def test_a_pause_stops_the_backlog_and_gives_it_back_to_the_cluster(db: Database) -> None:
    await due_tasks(db, {"busy": {"priority": 1}, "next": {}, "last": {"priority": -1}})
    clock = FakeClock(START)
    gate = Gate()
    service, loop = build_test_scheduler(db, clock=clock, handlers={"work": gate}, timings=ONE_SLOT)
    await loop.step()
    assert service.due.backlog == 2
    await service.pause(by="cli:ops", reason="maintenance")
    assert (await loop.step()).started == 0  # the loop sees the pause: the backlog goes back
    assert service.due.backlog == 0
    gate.blocking.release()
    await service.wait_idle(within=10)
    assert gate.order == ["busy"]  # the freed slot took nothing from the backlog
    queued = await service.list_runs(RunFilter(status=RunStatus.QUEUED), limit=10)
    assert sorted(r.task for r in queued) == ["last", "next"] and {r.node_id for r in queued} == {None}
    await service.resume(by="cli:ops")
    for _ in range(2):  # given back, they go to free slots only: one each step here
        await loop.step()
        await service.wait_idle(within=10)
    assert gate.order == ["busy", "next", "last"]  # within the grace: they run, in priority order


async def test_a_queued_run_cancelled_never_starts(db: Database) -> None:
    await due_tasks(db, {"busy": {"priority": 1}, "here": {}, "there": {"priority": -1}})
    clock = FakeClock(START)
    gate = Gate()
    a, loop_a = build_test_scheduler(db, clock=clock, handlers={"work": gate}, timings=ONE_SLOT, node_id="a")
    b, _ = build_test_scheduler(db, clock=clock, handlers={}, node_id="b")
    await loop_a.step()
    queued = {r.task: r.id for r in await a.list_runs(RunFilter(status=RunStatus.QUEUED), limit=10)}
    # Cancelled on the node that holds it: it leaves the backlog and ends at once.
    await a.cancel_run(queued["here"], by="ops@example.org")
    # Cancelled from another node: the holder sees the request at its next wake-up.
    run = await b.cancel_run(queued["there"], by="cli:ops")
    assert run.status == "queued" and run.cancel_requested_at is not None
    await loop_a.step()
    assert a.due.backlog == 0
    gate.blocking.release()
    await a.wait_idle(within=10)
    await a.runner.flush_ends()
    assert gate.order == ["busy"]
    runs = await runs_of(a)
    assert runs["here"].status == "cancelled" and runs["here"].error == "cancelled by ops@example.org before it started"
    assert runs["there"].status == "cancelled" and runs["there"].error == "cancelled by cli:ops before it started"


async def test_a_backlog_held_too_long_goes_back_and_a_node_with_a_free_slot_runs_it(db: Database) -> None:
    await due_tasks(db, {"busy": {"priority": 1}, "waiting": {}})
    clock = FakeClock(START)
    gate = Gate()
    a, loop_a = build_test_scheduler(db, clock=clock, handlers={"work": gate}, timings=ONE_SLOT, node_id="a")
    step = await loop_a.step()
    assert step.sleep_seconds == a.due.backlog_hold.total_seconds()  # it wakes to give the backlog back
    b_gate = Gate()
    b_gate.blocking.release()
    b, loop_b = build_test_scheduler(db, clock=clock, handlers={"work": b_gate}, node_id="b")
    await loop_b.step()
    assert b_gate.order == []  # nothing due: node a holds "waiting"
    clock.advance(a.due.backlog_hold.total_seconds())
    await loop_a.step()  # a's slot is still busy: it gives "waiting" back
    assert a.due.backlog == 0
    await loop_b.step()
    await b.wait_idle(within=10)
    assert b_gate.order == ["waiting"]
    gate.blocking.release()
    await a.wait_idle(within=10)
    await asyncio.sleep(0)
    assert gate.order == ["busy"]
