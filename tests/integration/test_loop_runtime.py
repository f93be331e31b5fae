"""The loop as it runs for real: early wake-ups on task changes, surviving a database outage and its own bugs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mediabeat.clock import SystemClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.scheduler.loop import SchedulerLoop
from mediabeat.tasks.base import RunContext
from mediabeat.testing import build_test_scheduler


class SignallingHandler:
    """Sets `ran` when a run starts."""

    def __init__(self) -> None:
        self.ran = asyncio.Event()

    async def __call__(self, ctx: RunContext) -> dict[str, int]:
        self.ran.set()
        return {}


async def test_a_task_change_wakes_the_sleeping_loop(db: Database) -> None:
    now = datetime.now(UTC)
    store = SchedulerStore(db)
    await store.update_task(1, {"enabled": False}, now)
    task = await store.create_task(
        {
            "name": "later",
            "handler": "later",
            "cron": "0 0 1 1 *",
            "last_run_at": now,
            "next_run_at": now + timedelta(days=300),
        },
        now,
    )
    handler = SignallingHandler()
    service, loop = build_test_scheduler(db, clock=SystemClock(), handlers={"later": handler}, tick_seconds=3600)
    stop = asyncio.Event()
    runner = asyncio.create_task(loop.run(stop))
    await asyncio.sleep(0.3)  # the loop is now asleep for up to an hour
    assert not handler.ran.is_set()
    await store.update_task(task.id, {"next_run_at": datetime.now(UTC)}, datetime.now(UTC))
    await service.notifier.notify()
    await asyncio.wait_for(handler.ran.wait(), timeout=5)
    stop.set()
    await asyncio.wait_for(runner, 10)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_loop_outlives_a_database_outage(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    migrated = Path(database_url.removeprefix("sqlite:///"))
    missing_dir = tmp_path / "away"
    db = Database(f"sqlite:///{missing_dir}/mediabeat.db")
    shutil.rmtree(missing_dir)  # the database file cannot be opened: every step fails
    handler = SignallingHandler()
    _, loop = build_test_scheduler(db, clock=SystemClock(), handlers={"nightly_cleanup": handler}, tick_seconds=1)
    stop = asyncio.Event()
    runner = asyncio.create_task(loop.run(stop))
    try:
        with caplog.at_level(logging.ERROR, logger="mediabeat.scheduler"):
            while sum("scheduler step failed" in r.message for r in caplog.records) < 2:
                await asyncio.sleep(0.05)
            assert not runner.done()
            missing_dir.mkdir()
            shutil.copyfile(migrated, missing_dir / "mediabeat.db")  # the database is back
            await asyncio.wait_for(handler.ran.wait(), timeout=15)
        failures = [r.message for r in caplog.records if "scheduler step failed" in r.message]
        assert "retrying in 0.5 s" in failures[0] and "retrying in 1.0 s" in failures[1]
        assert "unable to open database file" in failures[0]
        stop.set()
        await asyncio.wait_for(runner, 10)
    finally:
        # A failed or timed-out test still closes its connections: left to the garbage collector, they
        # would fail whichever later test it runs in.
        stop.set()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await db.dispose()


async def test_a_bug_in_a_step_or_a_heartbeat_does_not_stop_the_loop(
    db: Database, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = SignallingHandler()
    service, _ = build_test_scheduler(db, clock=SystemClock(), handlers={"nightly_cleanup": handler})
    loop = SchedulerLoop(service=service, clock=SystemClock(), tick_seconds=1, heartbeat_seconds=0.1)
    calls: Counter[str] = Counter()
    execute_due_tasks, heartbeat = service.execute_due_tasks, service.heartbeat

    async def broken_once_execute() -> int:
        calls["execute"] += 1
        if calls["execute"] == 1:
            raise RuntimeError("a bug in the step")
        return await execute_due_tasks()

    async def broken_once_heartbeat() -> None:
        calls["heartbeat"] += 1
        if calls["heartbeat"] == 1:
            raise KeyError("a bug in the heartbeat")
        await heartbeat()

    monkeypatch.setattr(service, "execute_due_tasks", broken_once_execute)
    monkeypatch.setattr(service, "heartbeat", broken_once_heartbeat)
    stop = asyncio.Event()
    with caplog.at_level(logging.ERROR, logger="mediabeat.scheduler"):
        runner = asyncio.create_task(loop.run(stop))
        await asyncio.wait_for(handler.ran.wait(), timeout=10)  # the step after the failed one ran the task
        async with asyncio.timeout(10):
            while calls["heartbeat"] < 3:  # and the node kept heartbeating
                await asyncio.sleep(0.05)
        assert not runner.done()
        stop.set()
        await asyncio.wait_for(runner, 10)  # a clean stop: nothing is re-raised at shutdown
    failures = {r.getMessage(): r for r in caplog.records}
    step = next(r for m, r in failures.items() if "unexpected RuntimeError: a bug in the step" in m)
    beat = next(r for m, r in failures.items() if "unexpected KeyError" in m)
    assert step.exc_info is not None and beat.exc_info is not None, "a bug is logged with its traceback"
    assert "scheduler step failed, retrying in 0.5 s" in step.getMessage()
