"""Several `mediabeat worker` processes on one database: every occurrence runs exactly once.

The workers share a simulated clock that runs 600 times faster than real time, so an
hour of schedule passes in six seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from mediabeat.db.engine import sync_url
from mediabeat.db.tables import scheduler_nodes, scheduler_task_runs, scheduler_tasks
from mediabeat.schedule import parse_schedule

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
SPEED = 600.0
WORKERS = 3
SIMULATED = timedelta(minutes=60)
TASKS = {"every-minute": "* * * * *", "every-five": "*/5 * * * *", "odd-minutes": "1-59/2 * * * *"}


def worker_env(database_url: str, origin: float) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MEDIABEAT_DATABASE_URL=database_url,
        MEDIABEAT_CLOCK_EPOCH=EPOCH.isoformat(),
        MEDIABEAT_CLOCK_SPEED=str(SPEED),
        MEDIABEAT_CLOCK_ORIGIN=str(origin),
        # In simulated seconds: 0.5 s of real time between heartbeats, no misfires from CPU contention.
        MEDIABEAT_HEARTBEAT_SECONDS="300",
        MEDIABEAT_STALE_AFTER_SECONDS="7200",
        MEDIABEAT_MISFIRE_GRACE_SECONDS="86400",
        MEDIABEAT_LOG_LEVEL="WARNING",
    )
    return env


def seed_tasks(database_url: str) -> None:
    engine = sa.create_engine(sync_url(database_url))
    with engine.begin() as conn:
        conn.execute(scheduler_tasks.update().values(enabled=False))
        for name, cron in TASKS.items():
            first = parse_schedule(cron).next_fire(EPOCH)
            conn.execute(
                scheduler_tasks.insert().values(
                    name=name,
                    handler="nightly_cleanup",
                    cron=cron,
                    overlap_policy="allow",
                    next_run_at=first,
                    last_run_at=EPOCH,
                    created_at=EPOCH,
                    updated_at=EPOCH,
                )
            )
    engine.dispose()


def scheduled_runs(database_url: str) -> list[tuple[str, datetime, str, str, str | None]]:
    engine = sa.create_engine(sync_url(database_url))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                scheduler_tasks.c.name,
                scheduler_task_runs.c.scheduled_for,
                scheduler_task_runs.c.status,
                scheduler_task_runs.c.node_id,
                scheduler_task_runs.c.error,
            )
            .join(scheduler_tasks)
            .where(scheduler_task_runs.c.trigger == "schedule")
        ).all()
    engine.dispose()
    return [(name, when, status, node, error) for name, when, status, node, error in rows]


def wait_until_registered(database_url: str, count: int, timeout: float = 90.0) -> None:
    """Wait until every worker has registered its node, which it does after installing its SIGTERM handler."""
    engine = sa.create_engine(sync_url(database_url))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                running = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(scheduler_nodes)
                    .where(scheduler_nodes.c.stopped_at.is_(None))
                ).scalar_one()
            if running >= count:
                return
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise AssertionError(f"only {running} of {count} workers registered within {timeout:.0f} s")


def unfinished(runs: list[tuple[str, datetime, str, str, str | None]]) -> list[str]:
    return [
        f"{name} {when:%H:%M} {status} on {node}: {error}"
        for name, when, status, node, error in runs
        if status != "succeeded"
    ]


def test_workers_share_the_schedule_and_run_each_occurrence_once(database_url: str, tmp_path: Path) -> None:
    seed_tasks(database_url)
    # Every worker is up before simulated time reaches the first occurrence; on a loaded machine the
    # interpreter and its imports can take several seconds to start.
    origin = time.time() + 12
    env = worker_env(database_url, origin)
    logs = [open(tmp_path / f"worker{i}.log", "w") for i in range(WORKERS)]  # noqa: SIM115
    workers = [
        subprocess.Popen([sys.executable, "-m", "mediabeat", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
        for log in logs
    ]
    try:
        wait_until_registered(database_url, WORKERS)
        time.sleep(max(0.0, origin - time.time()) + SIMULATED.total_seconds() / SPEED)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(timeout=60) for worker in workers]
        for log in logs:
            log.close()
    worker_logs = [(tmp_path / f"worker{i}.log").read_text()[-2000:] for i in range(WORKERS)]
    assert codes == [0] * WORKERS, worker_logs

    runs = scheduled_runs(database_url)
    end = EPOCH + SIMULATED - timedelta(minutes=2)  # the last moments may be cut off by the shutdown
    per_occurrence = Counter((name, when) for name, when, *_ in runs)
    assert all(count == 1 for count in per_occurrence.values())
    for name, cron in TASKS.items():
        expected = []
        for fire in parse_schedule(cron).fire_times(EPOCH):
            if fire > end:
                break
            expected.append(fire)
        ran = sorted(when for task, when, *_ in runs if task == name and when <= end)
        assert ran == expected, f"{name}: missing {sorted(set(expected) - set(ran))[:5]}"
    assert not unfinished(runs), (unfinished(runs)[:10], worker_logs)
    assert len({node for _, _, _, node, _ in runs}) >= 2, "the work should spread over the workers"
