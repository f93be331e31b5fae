"""What the periodic alert check (late, missing, slow) adds to a node's maintenance step.

    .venv/bin/python bench/alert_check_bench.py [--tasks 50] [--runs 100] [--repeat 20] [--database-url URL]

On a fresh migrated database (SQLite in a temporary directory unless --database-url names a
PostgreSQL one), N hourly tasks with 100 finished runs each. Measured in the same run:
- baseline: the maintenance step's own heartbeat (SchedulerService.heartbeat), what every node
  does every MEDIABEAT_NODE_HEARTBEAT_SECONDS;
- the check with no task having a late, missing or slow rule (what everyone pays);
- the check with every task having all three rules (nothing due: the usual case).
Each figure is the median of --repeat calls, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from mediabeat.clock import FakeClock
from mediabeat.db import migrate
from mediabeat.db.engine import Database
from mediabeat.db.tables import scheduler_task_runs, scheduler_tasks
from mediabeat.domain.task_alerts import AlertRuleChanges
from mediabeat.testing import build_test_scheduler

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


async def seed(db: Database, tasks: int, runs: int) -> list[int]:
    async with db.write() as conn:
        await conn.execute(sa.delete(scheduler_tasks))
        ids = []
        for i in range(tasks):
            row = await conn.execute(
                scheduler_tasks.insert()
                .values(
                    name=f"bench-{i}",
                    handler="noop",
                    cron="0 * * * *",
                    next_run_at=NOW + timedelta(minutes=30),
                    created_at=NOW - timedelta(days=30),
                    updated_at=NOW - timedelta(days=30),
                )
                .returning(scheduler_tasks.c.id)
            )
            task_id = row.scalar_one()
            ids.append(task_id)
            hours = [NOW.replace(minute=0) - timedelta(hours=h) for h in range(runs)]
            await conn.execute(
                scheduler_task_runs.insert(),
                [
                    {
                        "task_id": task_id,
                        "trigger": "schedule",
                        "scheduled_for": at,
                        "started_at": at,
                        "finished_at": at + timedelta(seconds=2),
                        "duration_ms": 2000,
                        "status": "succeeded",
                    }
                    for at in hours
                ],
            )
    return ids


async def median_ms(call: Callable[[], Awaitable[object]], repeat: int) -> float:
    await call()  # warm up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate.upgrade(url)
        db = Database(url)
        clock = FakeClock(NOW)
        service, _ = build_test_scheduler(db, clock=clock, handlers={})
        ids = await seed(db, args.tasks, args.runs)
        heartbeat = await median_ms(service.heartbeat, args.repeat)
        no_rules = await median_ms(service.check_alerts, args.repeat)
        for task_id in ids:
            changes = AlertRuleChanges(late_after_s=300, missing=True, slower_than_p95=3)
            await service.set_alert_rules(task_id, changes)
        clock.set(NOW + timedelta(seconds=1))
        assert await service.check_alerts() == 0, "nothing should be due"
        all_rules = await median_ms(service.check_alerts, args.repeat)
        await db.dispose()
    backend = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"{backend}, {args.tasks} tasks x {args.runs} runs, median of {args.repeat} calls")
    print(f"  baseline: heartbeat (the maintenance step's own work)   {heartbeat:8.2f} ms")
    print(f"  alert check, no task with a late/missing/slow rule       {no_rules:8.2f} ms")
    print(f"  alert check, every task with late + missing + p95 slow   {all_rules:8.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    asyncio.run(main(parser.parse_args()))
