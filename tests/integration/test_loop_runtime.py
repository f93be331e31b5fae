"""The loop as it runs for real: early wake-ups on task changes, and surviving a database outage."""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mediabeat.clock import SystemClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.scheduler import SchedulerStore
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
    with caplog.at_level(logging.ERROR, logger="mediabeat.scheduler"):
        runner = asyncio.create_task(loop.run(stop))
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
    await db.dispose()
