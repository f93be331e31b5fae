"""Scheduler benchmark: tick cost at 10k/100k tasks, and fire lag from due time to handler start.

    .venv/bin/python bench/scheduler_bench.py [--postgres postgresql://postgres@127.0.0.1/postgres] [--quick]

Each figure is printed beside a baseline measured in the same run:
- tick: our indexed claim of due tasks vs the product note's V1 approach (load every task
  and check its cron expression on each tick);
- lag: our loop (sleeps until the earliest due time) vs a fixed 1 s polling tick (the note
  polls every 60 s, which would put the mean lag near 30 s);
- burst: 1,000 occurrences due at once at the default run limit (32), claimed in one
  transaction with the node's backlog (MEDIABEAT_RUN_BACKLOG) vs the limit raised to 1,000,
  vs one claim per wave of free slots (backlog 0, the path before the backlog), and vs the
  write path before batching (one transaction per run end, the slot held until it commits).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mediabeat.clock import SystemClock
from mediabeat.db import migrate
from mediabeat.db.engine import Database, sync_url
from mediabeat.db.stores.run_ends import RunEndStore
from mediabeat.db.tables import scheduler_tasks
from mediabeat.domain.scheduler import RunEnd
from mediabeat.schedule import parse_schedule
from mediabeat.scheduler.run_ends import RecordedEnd, RunEndWriter
from mediabeat.scheduler.service import SchedulerTimings
from mediabeat.tasks.base import RunContext
from mediabeat.testing import build_test_scheduler

FAR = datetime(2100, 1, 1, tzinfo=UTC)
DEFAULT_MAX_CONCURRENT = SchedulerTimings().max_concurrent
DEFAULT_BACKLOG = SchedulerTimings().backlog


class LagRecorder:
    """A handler that records how late it started relative to the occurrence it runs."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        self.lags_ms.append((datetime.now(UTC) - ctx.scheduled_for).total_seconds() * 1000)
        return {}


def summary(lags: list[float]) -> str:
    return f"started {len(lags)}/1000, p50 {pct(lags, 50):6.1f} ms max {max(lags):6.1f} ms"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def seed(url: str, count: int, due: int, now: datetime) -> None:
    """`count` tasks: `due` of them due now, the rest spread over the next day."""
    engine = sa.create_engine(sync_url(url))
    with engine.begin() as conn:
        conn.execute(scheduler_tasks.delete())
        rows = [
            {
                "name": f"task-{i:06d}",
                "handler": "bench",
                "cron": "*/5 * * * *",
                "overlap_policy": "allow",
                "next_run_at": now - timedelta(seconds=1) if i < due else now + timedelta(seconds=60 + i % 86_400),
                "last_run_at": now - timedelta(hours=1),
                "created_at": now,
                "updated_at": now,
            }
            for i in range(count)
        ]
        for start in range(0, len(rows), 5000):
            conn.execute(scheduler_tasks.insert(), rows[start : start + 5000])
    engine.dispose()


async def bench_tick(url: str, count: int, repeats: int) -> tuple[float, float, float]:
    """Median ms for: a claim tick with 10 due tasks, an idle tick, and the V1 full scan."""
    db = Database(url)
    handler = LagRecorder()
    service, loop = build_test_scheduler(
        db, clock=SystemClock(), handlers={"bench": handler}, timings=SchedulerTimings(misfire_grace=timedelta(days=1))
    )
    claim_ms, idle_ms, scan_ms = [], [], []
    for _ in range(repeats):
        seed(url, count, due=10, now=datetime.now(UTC))
        started = time.perf_counter()
        result = await loop.step()
        claim_ms.append((time.perf_counter() - started) * 1000)
        assert result.started == 10, result
        await service.wait_idle()
        started = time.perf_counter()
        await loop.step()
        idle_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        await v1_scan(db, datetime.now(UTC))
        scan_ms.append((time.perf_counter() - started) * 1000)
    await db.dispose()
    return statistics.median(claim_ms), statistics.median(idle_ms), statistics.median(scan_ms)


async def v1_scan(db: Database, now: datetime) -> int:
    """The note's V1 tick: read every task and decide from its cron whether it is due."""
    due = 0
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(scheduler_tasks.c.cron, scheduler_tasks.c.timezone, scheduler_tasks.c.last_run_at)
        )
        for cron, zone, last_run in rows:
            upcoming = parse_schedule(cron, zone).next_fire(last_run)
            due += upcoming is not None and upcoming <= now
    return due


class OneEndAtATime(RunEndWriter):
    """The write path before batching, for a baseline: each run's end is its own transaction."""

    def add(self, end: RunEnd) -> asyncio.Future[RecordedEnd | None]:
        future: asyncio.Future[RecordedEnd | None] = asyncio.get_running_loop().create_future()

        async def write() -> None:
            records, chained = await self.store.record_run_ends([end])
            run = records.get(end.run_id)
            future.set_result(None if run is None else RecordedEnd(run, chained=run.task_id in chained))

        self._one = asyncio.create_task(write())
        return future


async def bench_lag(
    url: str,
    *,
    tasks: int,
    spread_s: float,
    fixed_tick: float | None,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    one_end_at_a_time: bool = False,
    backlog: int = DEFAULT_BACKLOG,
) -> list[float]:
    """Start a loop, make `tasks` tasks due over `spread_s` seconds (0 = all at once), return lags in ms.

    one_end_at_a_time: the baseline write path, one transaction per run end, and a slot held until it commits.
    """
    db = Database(url)
    handler = LagRecorder()
    service, loop = build_test_scheduler(
        db,
        clock=SystemClock(),
        handlers={"bench": handler},
        tick_seconds=fixed_tick or 60.0,
        timings=SchedulerTimings(
            misfire_grace=timedelta(days=1), claim_batch=2000, max_concurrent=max_concurrent, backlog=backlog
        ),
    )
    if one_end_at_a_time:
        service.runner.ends = OneEndAtATime(RunEndStore(db))
        service.runner._free_slot = lambda run_id: None  # type: ignore[method-assign]
    start = datetime.now(UTC) + timedelta(seconds=1.5)
    engine = sa.create_engine(sync_url(url))
    with engine.begin() as conn:
        conn.execute(scheduler_tasks.delete())
        conn.execute(
            scheduler_tasks.insert(),
            [
                {
                    "name": f"lag-{i:05d}",
                    "handler": "bench",
                    "cron": "0 0 1 1 *",
                    "overlap_policy": "allow",
                    "next_run_at": start + timedelta(seconds=spread_s * i / max(1, tasks - 1)),
                    "last_run_at": start - timedelta(days=1),
                    "created_at": start,
                    "updated_at": start,
                }
                for i in range(tasks)
            ],
        )
    engine.dispose()
    stop = asyncio.Event()
    if fixed_tick is not None:
        runner = asyncio.create_task(fixed_tick_loop(loop, stop, fixed_tick))
    else:
        runner = asyncio.create_task(loop.run(stop))
    deadline = time.monotonic() + spread_s + 30
    while len(handler.lags_ms) < tasks and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await runner
    await db.dispose()
    return handler.lags_ms


async def fixed_tick_loop(loop: Any, stop: asyncio.Event, tick: float) -> None:
    """The note's design: wake every `tick` seconds whatever is due."""
    while not stop.is_set():
        await loop.service.execute_due_tasks()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), tick)
    await loop.service.wait_idle()


def fresh_database(kind: str, pg_url: str | None) -> tuple[str, Any]:
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="mbbench")
        return f"sqlite:///{folder}/bench.db", lambda: None
    assert pg_url
    name = f"mb_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return make_url(pg_url).set(database=name).render_as_string(hide_password=False), drop


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("MEDIABEAT_TEST_POSTGRES_URL"))
    parser.add_argument("--quick", action="store_true", help="10k tasks only, fewer repeats")
    parser.add_argument("--burst-only", action="store_true", help="only the burst of 1,000 (default vs raised limit)")
    args = parser.parse_args()
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        f", load average {os.getloadavg()[0]:.1f}"
    )
    backends = ["sqlite"] + (["postgres"] if args.postgres else [])
    sizes = [10_000] if args.quick else [10_000, 100_000]
    for kind in backends:
        url, drop = fresh_database(kind, args.postgres)
        try:
            migrate.upgrade(url)
            for size in [] if args.burst_only else sizes:
                claim, idle, scan = await bench_tick(url, size, repeats=3 if args.quick else 5)
                print(
                    f"{kind:8} tick, {size:>7,} tasks: claim 10 due {claim:7.1f} ms | idle {idle:6.1f} ms"
                    f" | baseline V1 full cron scan {scan:8.1f} ms"
                )
            if not args.burst_only:
                distinct = await bench_lag(url, tasks=50, spread_s=10, fixed_tick=None)
                polled = await bench_lag(url, tasks=50, spread_s=10, fixed_tick=1.0)
                print(
                    f"{kind:8} lag, 50 distinct due times: p50 {pct(distinct, 50):6.1f} ms"
                    f" p99 {pct(distinct, 99):6.1f} ms | baseline 1 s polling tick p50 {pct(polled, 50):6.1f} ms"
                    f" p99 {pct(polled, 99):6.1f} ms"
                )
            # One node runs at most MEDIABEAT_MAX_CONCURRENT_RUNS scheduled runs at once (32 by default),
            # so a burst of 1,000 starts in waves of 32; each wave's slots free as its handlers return
            # and their ends are written together. Baseline: the limit raised to 1,000 (one wave).
            burst = await bench_lag(url, tasks=1000, spread_s=0, fixed_tick=None)
            raised = await bench_lag(url, tasks=1000, spread_s=0, fixed_tick=None, max_concurrent=1000)
            waves = await bench_lag(url, tasks=1000, spread_s=0, fixed_tick=None, backlog=0)
            one_by_one = await bench_lag(
                url, tasks=1000, spread_s=0, fixed_tick=None, one_end_at_a_time=True, backlog=0
            )
            print(
                f"{kind:8} lag, 1,000 due at once, default limit {DEFAULT_MAX_CONCURRENT} with the backlog:"
                f" {summary(burst)} (target: all within 1000 ms)"
                f" | baseline limit 1,000: {summary(raised)}"
                f" | baseline a claim per wave (backlog 0): {summary(waves)}"
                f" | baseline one commit per run end (backlog 0): {summary(one_by_one)}"
                f" | load average {os.getloadavg()[0]:.1f}"
            )
        finally:
            drop()


if __name__ == "__main__":
    asyncio.run(main())
