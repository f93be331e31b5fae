"""The scheduler's semantics on a real database (SQLite, and PostgreSQL when available), with a fake clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from mediabeat.clock import FakeClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.domain.scheduler import RunFilter, RunStatus
from mediabeat.scheduler.service import (
    OverlapForbidden,
    SchedulerTimings,
    TaskChanges,
    TaskNotFound,
    TaskValidationError,
)
from mediabeat.tasks.base import RunContext
from mediabeat.testing import BlockingHandler, FailingHandler, RecordingHandler, build_test_scheduler
from tests.integration.seeds import only_cleanup_seeded

START = datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC)


async def add_task(db: Database, name: str, cron: str = "*/10 * * * *", **values: object) -> int:
    store = SchedulerStore(db)
    task = await store.create_task(
        {"name": name, "handler": values.pop("handler", name), "cron": cron, **values}, START
    )
    return task.id


async def settle(service) -> None:  # type: ignore[no-untyped-def]
    await service.wait_idle(within=10)


async def test_never_run_task_is_due_at_start_then_runs_on_its_cron(db: Database) -> None:
    await only_cleanup_seeded(db)
    clock = FakeClock(START)
    handler = RecordingHandler()
    await add_task(db, "every-ten", "*/10 * * * *")
    service, loop = build_test_scheduler(
        db, clock=clock, handlers={"every-ten": handler, "nightly_cleanup": handler}, tick_seconds=3600
    )

    first = await loop.step()
    await settle(service)
    # nightly-cleanup (seeded) and every-ten have never run: both are due at start-up.
    assert first.started == 2
    assert sorted(handler.scheduled_for) == [
        datetime(2026, 3, 2, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    ]
    # The loop sleeps until the next due time (09:10), not a whole tick.
    assert first.sleep_seconds == pytest.approx(570)

    clock.set(datetime(2026, 3, 2, 9, 10, 0, 200_000, tzinfo=UTC))
    assert (await loop.step()).started == 1
    await settle(service)
    assert handler.scheduled_for[-1] == datetime(2026, 3, 2, 9, 10, tzinfo=UTC)
    assert (await loop.step()).started == 0


async def test_each_occurrence_runs_once_when_two_nodes_claim_at_once(db: Database) -> None:
    await only_cleanup_seeded(db)
    clock = FakeClock(START)
    handler_a, handler_b = RecordingHandler(), RecordingHandler()
    for i in range(20):
        await add_task(db, f"task-{i}", "* * * * *", handler="work")
    await SchedulerStore(db).update_task(1, {"enabled": False}, START)  # the seeded cleanup task
    a, loop_a = build_test_scheduler(db, clock=clock, handlers={"work": handler_a}, node_id="a")
    b, loop_b = build_test_scheduler(db, clock=clock, handlers={"work": handler_b}, node_id="b")
    for _minute in range(5):
        await asyncio.gather(loop_a.step(), loop_b.step())
        await asyncio.gather(settle(a), settle(b))
        clock.advance(60)
    seen = [(c.task_name, c.scheduled_for) for c in handler_a.calls + handler_b.calls]
    assert len(seen) == 20 * 5
    assert len(set(seen)) == len(seen)
    runs = await a.list_runs(RunFilter(status="succeeded"), limit=500)
    assert len(runs) == 100


async def test_failing_handler_is_recorded_and_the_loop_goes_on(db: Database) -> None:
    await only_cleanup_seeded(db)
    clock = FakeClock(START)
    failing, fine = FailingHandler("upstream returned garbage"), RecordingHandler()
    await add_task(db, "bad", "*/5 * * * *")
    await add_task(db, "good", "*/5 * * * *")
    service, loop = build_test_scheduler(
        db, clock=clock, handlers={"bad": failing, "good": fine, "nightly_cleanup": fine}
    )
    await loop.step()
    await settle(service)
    clock.set(datetime(2026, 3, 2, 9, 5, tzinfo=UTC))
    await loop.step()
    await settle(service)

    assert failing.calls == 2  # tried again at the next occurrence
    failed = await service.list_runs(RunFilter(task="bad"))
    assert [r.status for r in failed] == ["failed", "failed"]
    assert failed[0].error == "RuntimeError: upstream returned garbage"
    assert failed[0].traceback is None  # listings leave tracebacks out; a run's detail has it
    detail = await service.get_run(failed[0].id)
    assert detail is not None and detail.traceback is not None and "RuntimeError" in detail.traceback
    assert (await service.get_task_by_name("bad")).last_status == "failed"
    assert [r.status for r in await service.list_runs(RunFilter(task="good"))] == ["succeeded", "succeeded"]


async def test_overlap_forbid_records_a_skipped_run(db: Database) -> None:
    await only_cleanup_seeded(db)
    clock = FakeClock(START)
    blocking = BlockingHandler()
    await add_task(db, "slow", "* * * * *")
    service, loop = build_test_scheduler(
        db, clock=clock, handlers={"slow": blocking, "nightly_cleanup": RecordingHandler()}
    )
    await loop.step()
    await asyncio.wait_for(blocking.started.wait(), 5)
    clock.advance(60)
    await loop.step()
    runs = await service.list_runs(RunFilter(task="slow"))
    assert [r.status for r in runs] == ["skipped", "running"]
    assert "still running" in (runs[0].error or "")
    with pytest.raises(OverlapForbidden):
        await service.run_now("slow", triggered_by="admin@example.test")
    blocking.release()
    await settle(service)
    assert [r.status for r in await service.list_runs(RunFilter(task="slow"))] == ["skipped", "succeeded"]


async def test_a_skipped_overlap_and_a_new_run_are_claimed_in_the_same_step(db: Database) -> None:
    await only_cleanup_seeded(db)
    clock = FakeClock(START)
    blocking, quick = BlockingHandler(), RecordingHandler()
    await add_task(db, "slow", "* * * * *")
    await add_task(db, "quick", "* * * * *")
    service, loop = build_test_scheduler(
        db, clock=clock, handlers={"slow": blocking, "quick": quick, "nightly_cleanup": RecordingHandler()}
    )
    await loop.step()
    await asyncio.wait_for(blocking.started.wait(), 5)
    for _ in range(200):  # let quick's first run finish: only slow's may still be running
        if [r.status for r in await service.list_runs(RunFilter(task="quick"))] == ["succeeded"]:
            break
        await asyncio.sleep(0.05)
    clock.advance(60)
    await loop.step()  # one skipped row and one running row go into the same INSERT
    assert [r.status for r in await service.list_runs(RunFilter(task="slow"))] == ["skipped", "running"]
    blocking.release()
    await settle(service)
    assert [r.status for r in await service.list_runs(RunFilter(task="quick"))] == ["succeeded", "succeeded"]


async def test_overlap_allow_runs_alongside(db: Database) -> None:
    await only_cleanup_seeded(db)
    clock = FakeClock(START)
    blocking = BlockingHandler()
    await add_task(db, "slow", "* * * * *", overlap_policy="allow")
    service, loop = build_test_scheduler(
        db, clock=clock, handlers={"slow": blocking, "nightly_cleanup": RecordingHandler()}
    )
    await loop.step()
    clock.advance(60)
    await loop.step()
    await asyncio.sleep(0)
    assert blocking.calls == 2
    blocking.release()
    await settle(service)
    assert [r.status for r in await service.list_runs(RunFilter(task="slow"))] == ["succeeded", "succeeded"]


async def test_timeout_cancels_the_handler_and_marks_timed_out(db: Database) -> None:
    clock = FakeClock(START)
    blocking = BlockingHandler()
    await add_task(db, "stuck", "0 * * * *", timeout_s=1)
    service, _ = build_test_scheduler(db, clock=clock, handlers={"stuck": blocking})
    run = await asyncio.wait_for(service.run_now_and_wait("stuck", triggered_by="cli"), 10)
    assert run.status == "timed_out"
    assert run.error == "cancelled after the task's timeout of 1 s"
    assert run.trigger == "manual" and run.triggered_by == "cli"


@pytest.mark.parametrize(
    ("policy", "expected_runs", "expected_missed"),
    [("run_once", 1, 5), ("skip", 0, 6), ("catch_up", 3, 3)],
)
async def test_misfire_after_downtime(db: Database, policy: str, expected_runs: int, expected_missed: int) -> None:
    await only_cleanup_seeded(db)
    clock = FakeClock(START)
    handler = RecordingHandler()
    await add_task(db, "hourly", "0 * * * *", misfire_policy=policy)
    timings = SchedulerTimings(max_catch_up=3)
    service, loop = build_test_scheduler(
        db, clock=clock, handlers={"hourly": handler, "nightly_cleanup": RecordingHandler()}, timings=timings
    )
    await loop.step()  # never run: runs at once, for 09:00
    await settle(service)
    handler.calls.clear()
    # The service is down from 09:00:30 until 15:20: occurrences 10:00 ... 15:00 pass unseen.
    clock.set(datetime(2026, 3, 2, 15, 20, tzinfo=UTC))
    await loop.step()
    await settle(service)
    assert len(handler.calls) == expected_runs
    runs = await service.list_runs(RunFilter(task="hourly"), limit=20)
    newest = runs[0]
    assert sum(r.missed for r in runs) == expected_missed
    if policy == "skip":
        assert newest.status == "skipped" and "6 occurrence(s) passed" in (newest.error or "")
    if policy == "catch_up":
        assert handler.scheduled_for == [datetime(2026, 3, 2, h, tzinfo=UTC) for h in (13, 14, 15)]
    task = await service.get_task_by_name("hourly")
    assert task.next_run_at == datetime(2026, 3, 2, 16, tzinfo=UTC)


async def test_reaper_abandons_runs_of_a_dead_node(db: Database) -> None:
    clock = FakeClock(START)
    await add_task(db, "crawl", "0 * * * *")
    # Node "dead" claims a run and then vanishes (no handler ever finishes it).
    dead_store = SchedulerStore(db)
    task = await dead_store.get_task_by_name("crawl")
    assert task is not None
    run_id = await dead_store.claim_manual_run(task=task, now=clock.now(), node_id="dead-node", triggered_by=None)
    survivor, loop = build_test_scheduler(db, clock=clock, handlers={"crawl": RecordingHandler()}, node_id="alive")
    clock.advance(10)
    assert await loop.maintenance_step() == 0  # 10 s without a heartbeat is not yet stale
    clock.advance(15)
    assert await loop.maintenance_step() == 1
    run = await survivor.get_run(run_id)
    assert run is not None and run.status == "abandoned"
    assert run.error == "dead-node stopped sending heartbeats; the run was abandoned"
    assert (await survivor.get_task_by_name("crawl")).last_status == "abandoned"


async def test_a_run_claimed_as_the_connection_broke_is_abandoned_by_its_own_node_within_two_beats(
    db: Database,
) -> None:
    """The claim committed but the node never heard: no process executes the run, so nothing would end it."""
    clock = FakeClock(START)
    blocking = BlockingHandler()
    for name in ("crawl", "report", "long"):
        await add_task(db, name, "0 * * * *")
    service, loop = build_test_scheduler(db, clock=clock, handlers={"crawl": RecordingHandler(), "long": blocking})
    store = SchedulerStore(db)
    crawl = await store.get_task_by_name("crawl")
    assert crawl is not None
    orphan = await store.claim_manual_run(task=crawl, now=clock.now(), node_id="test-node", triggered_by=None)
    # The same node id in another process (the CLI, say), heartbeating its own run: not an orphan.
    elsewhere = await store.claim_manual_run(
        task=await service.get_task_by_name("report"), now=clock.now(), node_id="test-node", triggered_by=None
    )
    executing = await service.run_now("long")  # blocked in a handler: executing here
    await asyncio.wait_for(blocking.started.wait(), 5)
    clock.advance(5)
    await loop.maintenance_step()
    assert (await service.get_run(orphan)).status == "running"  # one beat: it may still be starting
    clock.advance(6)
    await store.heartbeat_runs([elsewhere], clock.now())
    await loop.maintenance_step()
    statuses = {run_id: (await service.get_run(run_id)).status for run_id in (orphan, elsewhere, executing)}
    assert statuses == {orphan: "abandoned", elsewhere: "running", executing: "running"}
    abandoned = await service.get_run(orphan)
    assert "claimed the run as its connection to the database broke" in (abandoned.error or "")
    blocking.release()
    assert (await service.wait_for_run(executing)).status == "succeeded"


async def test_heartbeats_keep_a_long_run_alive(db: Database) -> None:
    clock = FakeClock(START)
    blocking = BlockingHandler()
    await add_task(db, "long", "0 * * * *")
    service, loop = build_test_scheduler(db, clock=clock, handlers={"long": blocking})
    run_id = await service.run_now("long")
    await asyncio.wait_for(blocking.started.wait(), 5)
    for _ in range(10):  # 100 s of heartbeats every 10 s
        clock.advance(10)
        assert await loop.maintenance_step() == 0
    blocking.release()
    run = await service.wait_for_run(run_id)
    assert run.status == "succeeded"


async def test_a_run_started_without_a_loop_heartbeats_itself(db: Database) -> None:
    """`tasks run` in the CLI, or the API with ENABLE_SCHEDULER off: no loop beats for the run, the service does."""
    clock = FakeClock(START)
    blocking = BlockingHandler()
    await add_task(db, "long", "0 * * * *")
    service, _ = build_test_scheduler(db, clock=clock, handlers={"long": blocking}, node_id="cli")
    reaper, _ = build_test_scheduler(db, clock=clock, handlers={}, node_id="reaper")

    async def beaten_at() -> datetime | None:
        run = await service.get_run(run_id)
        assert run is not None and run.status == "running"
        return run.heartbeat_at

    async with service.heartbeating():
        run_id = await service.run_now("long")
        await asyncio.wait_for(blocking.started.wait(), 5)
        for _ in range(6):  # a minute, three times stale_after
            clock.advance(10)
            async with asyncio.timeout(5):
                while await beaten_at() != clock.now():
                    await asyncio.sleep(0.01)
            assert await reaper.reap_abandoned() == []
        blocking.release()
        run = await service.wait_for_run(run_id)
    assert run.status == "succeeded"

    # Without it, the same run is taken for one whose node died.
    blocking = BlockingHandler()
    service, _ = build_test_scheduler(db, clock=clock, handlers={"long": blocking}, node_id="cli")
    run_id = await service.run_now("long")
    await asyncio.wait_for(blocking.started.wait(), 5)
    clock.advance(30)
    assert [r.id for r in await reaper.reap_abandoned()] == [run_id]
    blocking.release()
    await service.wait_idle()


async def test_update_task_validates_and_reschedules(db: Database) -> None:
    clock = FakeClock(START)
    await add_task(db, "report", "0 * * * *")
    service, _ = build_test_scheduler(db, clock=clock, handlers={})
    task = await service.get_task_by_name("report")
    updated = await service.update_task(task.id, TaskChanges(cron="30 8 * * MON-FRI", timezone="America/New_York"))
    assert updated.cron == "30 8 * * MON-FRI"
    assert updated.next_run_at == datetime(2026, 3, 2, 13, 30, tzinfo=UTC)  # 08:30 EST
    with pytest.raises(TaskValidationError) as bad_cron:
        await service.update_task(task.id, TaskChanges(cron="0 25 * * *"))
    assert bad_cron.value.field == "cron" and "bad hour" in bad_cron.value.message
    with pytest.raises(TaskValidationError) as bad_zone:
        await service.update_task(task.id, TaskChanges(timezone="Mars/Olympus"))
    assert bad_zone.value.field == "timezone"
    with pytest.raises(TaskValidationError):
        await service.update_task(task.id, TaskChanges(misfire_policy="sometimes"))
    with pytest.raises(TaskNotFound):
        await service.get_task_by_name("nope")
    toggled = await service.toggle(task.id)
    assert toggled.enabled is False


async def test_disabled_tasks_do_not_run(db: Database) -> None:
    await only_cleanup_seeded(db)
    clock = FakeClock(START)
    handler = RecordingHandler()
    task_id = await add_task(db, "quiet", "* * * * *", enabled=False)
    service, loop = build_test_scheduler(db, clock=clock, handlers={"quiet": handler, "nightly_cleanup": handler})
    await loop.step()
    await settle(service)
    assert all(c.task_name != "quiet" for c in handler.calls)
    await service.set_enabled(task_id, True)
    clock.advance(60)
    await loop.step()
    await settle(service)
    assert [c.task_name for c in handler.calls].count("quiet") == 1


async def test_stats_count_outcomes_and_durations(db: Database) -> None:
    await only_cleanup_seeded(db)
    clock = FakeClock(START)
    await add_task(db, "ok", "0 * * * *")
    await add_task(db, "bad", "0 * * * *")
    service, _ = build_test_scheduler(db, clock=clock, handlers={"ok": RecordingHandler(), "bad": FailingHandler()})
    for _ in range(3):
        await service.run_now_and_wait("ok")
    await service.run_now_and_wait("bad")
    stats = await service.stats()
    assert (stats.total_tasks, stats.enabled_tasks) == (3, 3)
    assert (stats.total_runs, stats.succeeded_runs, stats.failed_runs, stats.runs_last_24h) == (4, 3, 1, 4)
    per_task = {t.name: t for t in stats.tasks}
    assert per_task["ok"].runs == 3 and per_task["ok"].last_status == "succeeded"
    assert per_task["ok"].p50_ms is not None and per_task["ok"].p95_ms is not None
    assert per_task["bad"].last_status == "failed"


async def test_nightly_cleanup_deletes_old_history_in_batches(db: Database) -> None:
    import sqlalchemy as sa

    from mediabeat.app import build_registry
    from mediabeat.db.tables import media_crawl_jobs, organizations, scheduler_task_runs, task_alerts
    from mediabeat.settings import Settings

    clock = FakeClock(START)
    async with db.write() as conn:
        org_id = (
            await conn.execute(organizations.insert().values(name="o", created_at=START).returning(organizations.c.id))
        ).scalar_one()
        await conn.execute(
            media_crawl_jobs.insert(),
            [
                {
                    "org_id": org_id,
                    "url": f"http://127.0.0.1/{i}",
                    "url_hash": f"h{i}",
                    "status": "succeeded",
                    "run_after": START,
                    "created_at": START - timedelta(days=age),
                    "updated_at": START,
                }
                for i, age in enumerate([40] * 7 + [5] * 3)
            ],
        )
        await conn.execute(
            scheduler_task_runs.insert(),
            [
                {
                    "task_id": 1,
                    "trigger": "manual",
                    "scheduled_for": START - timedelta(days=age, seconds=i),
                    "started_at": START - timedelta(days=age, seconds=i),
                    "status": "succeeded",
                }
                for i, age in enumerate([61] * 5 + [10] * 2)
            ],
        )
        await conn.execute(
            task_alerts.insert(),
            [
                {
                    "task_id": 1,
                    "kind": "failure",
                    "key": f"run:{i}",
                    "message": "m",
                    "destination": "global",
                    "created_at": START - timedelta(days=age),
                }
                for i, age in enumerate([61, 61, 61, 3])
            ],
        )
    settings = Settings(cleanup_batch_size=2, database_url="sqlite:///unused.db")
    service, _ = build_test_scheduler(
        db, clock=clock, handlers={"nightly_cleanup": build_registry(settings, db).get("nightly_cleanup")}
    )
    run = await service.run_now_and_wait("nightly-cleanup")
    assert run.status == "succeeded"
    assert run.result is not None
    assert (run.result["crawl_jobs_deleted"], run.result["task_runs_deleted"], run.result["task_alerts_deleted"]) == (
        7,
        5,
        3,
    )
    async with db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(media_crawl_jobs))).scalar_one() == 3
        assert (await conn.execute(sa.select(sa.func.count()).select_from(scheduler_task_runs))).scalar_one() == 3


async def test_many_identical_claims_keep_matching_the_partial_unique_index(db: Database) -> None:
    await only_cleanup_seeded(db)
    # psycopg prepares a statement after five runs and PostgreSQL may then pick a generic plan:
    # the ON CONFLICT target must still match the partial index.
    clock = FakeClock(START)
    handler = RecordingHandler()
    await add_task(db, "minutely", "* * * * *", last_run_at=START, next_run_at=datetime(2026, 3, 2, 9, 1, tzinfo=UTC))
    await SchedulerStore(db).update_task(1, {"enabled": False}, START)
    service, loop = build_test_scheduler(db, clock=clock, handlers={"minutely": handler})
    for _ in range(30):
        clock.advance(60)
        assert (await loop.step()).started == 1
        await settle(service)
    assert len(handler.calls) == 30


async def test_a_node_runs_at_most_max_concurrent_scheduled_executions(db: Database) -> None:
    await only_cleanup_seeded(db)
    await SchedulerStore(db).update_task(1, {"enabled": False}, START)  # the seeded cleanup task
    clock = FakeClock(START)
    blocking = BlockingHandler()
    for i in range(5):
        # slow-4 may overlap: it is also run by hand while its scheduled run is queued.
        await add_task(db, f"slow-{i}", "0 * * * *", handler="slow", overlap_policy="allow" if i == 4 else "forbid")
    service, loop = build_test_scheduler(
        db, clock=clock, handlers={"slow": blocking}, timings=SchedulerTimings(max_concurrent=2)
    )
    first = await loop.step()
    assert first.started == 2
    assert service.free_slots == 0
    # The other three were claimed too, as this node's backlog: queued, started as slots free.
    assert service.due.backlog == 3
    queued = await service.list_runs(RunFilter(status=RunStatus.QUEUED), limit=20)
    assert len(queued) == 3 and {r.node_id for r in queued} == {"test-node"}
    # Full: wait for a run to end (it wakes the loop), or until the backlog must be given back.
    assert first.sleep_seconds == service.due.backlog_hold.total_seconds()
    assert (await loop.step()).started == 0
    assert blocking.calls == 2
    # A manual run is an admin's explicit request and does not wait for a slot.
    manual = await service.run_now("slow-4")
    assert manual in service.active_run_ids
    blocking.release()
    await settle(service)  # the backlog starts as the slots free, two at a time, without a loop step
    # Each of the five tasks ran once at start-up (slow-4 also once by hand).
    assert blocking.calls == 6
    runs = await service.list_runs(RunFilter(), limit=20)
    assert len([r for r in runs if r.trigger == "schedule"]) == 5
    assert {r.status for r in runs} == {"succeeded"}


async def test_shutdown_records_every_cancelled_run_including_unreached_catch_up(db: Database) -> None:
    await only_cleanup_seeded(db)
    clock = FakeClock(START)
    started = asyncio.Event()

    async def hangs_after_start_up(ctx: RunContext) -> dict[str, object]:
        if ctx.scheduled_for.hour != 9:  # the start-up run ends; the catch-up runs hang until cancelled
            started.set()
            await asyncio.Event().wait()
        return {}

    await add_task(db, "hourly", "0 * * * *", misfire_policy="catch_up")
    service, loop = build_test_scheduler(
        db,
        clock=clock,
        handlers={"hourly": hangs_after_start_up, "nightly_cleanup": RecordingHandler()},
        timings=SchedulerTimings(max_catch_up=3),
    )
    await loop.step()  # never run: the 09:00 occurrence
    await settle(service)
    clock.set(datetime(2026, 3, 2, 15, 20, tzinfo=UTC))
    assert (await loop.step()).started == 3  # 13:00, 14:00 and 15:00, one after another
    await asyncio.wait_for(started.wait(), 5)
    await service.cancel_all()
    runs = await service.list_runs(RunFilter(task="hourly"), limit=10)
    by_hour = {r.scheduled_for.hour: r for r in runs}
    assert by_hour[9].status == "succeeded"
    assert by_hour[13].status == "failed" and "shut down mid-run" in (by_hour[13].error or "")
    for hour in (14, 15):
        assert by_hour[hour].status == "failed"
        assert by_hour[hour].error == "cancelled: node test-node shut down before the run finished"
    assert not service.active_run_ids
    assert (await service.get_task_by_name("hourly")).last_status == "failed"


async def test_a_run_handed_over_is_adopted_once_by_a_node_with_its_handler(db: Database) -> None:
    clock = FakeClock(START)
    await add_task(db, "report", "0 0 1 1 *", next_run_at=START.replace(year=2027))
    shell, _ = build_test_scheduler(db, clock=clock, handlers={}, node_id="shell")
    handler = RecordingHandler()
    node_a, loop_a = build_test_scheduler(db, clock=clock, handlers={"report": handler}, node_id="node-a")
    node_b, _ = build_test_scheduler(db, clock=clock, handlers={"report": handler}, node_id="node-b")
    lacking, _ = build_test_scheduler(db, clock=clock, handlers={}, node_id="node-c")

    run_id = await shell.runner.hand_over(await shell.get_task_by_name("report"), triggered_by="cli")
    assert await lacking.adopt_handed_runs() == 0  # no handler for it: left for a node that has one
    assert (await loop_a.step()).started >= 1  # the loop's step adopts it
    assert await node_b.adopt_handed_runs() == 0  # adopted once
    await settle(node_a)
    run = await shell.get_run(run_id)
    assert run is not None and (run.status, run.node_id, run.trigger) == ("succeeded", "node-a", "manual")
    assert len(handler.calls) == 1

    stale = await shell.runner.hand_over(await shell.get_task_by_name("report"), triggered_by="cli")
    clock.advance(21)  # past stale_after: no node adopts it; the reaper abandons it
    assert await node_b.adopt_handed_runs() == 0
    assert [r.id for r in await node_b.reap_abandoned()] == [stale]
