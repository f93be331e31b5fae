"""Run control across real processes: a cancel issued from another process stops the run on the worker
executing it, and a pause from the CLI reaches two workers at once; the resume lets them go on."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from mediabeat.db.tables import scheduler_pause, scheduler_task_runs, scheduler_tasks
from tests.processes.harness import Workers, base_env, engine, mediabeat, scheduled_runs, seed_tasks, wait_for

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
SPEED = 60.0  # a simulated minute is a real second: the every-minute task runs every second


def sim_env(database_url: str, origin: float) -> dict[str, str]:
    return base_env(
        database_url,
        clock_epoch=EPOCH.isoformat(),
        clock_speed=str(SPEED),
        clock_origin=str(origin),
        heartbeat_seconds="30",  # half a real second
        node_heartbeat_seconds="30",
        stale_after_seconds=str(SPEED * 60),
        misfire_grace_seconds="30",
        tick_seconds="300",
        log_level="WARNING",
    )


def test_a_cancel_from_another_process_stops_the_run_and_a_pause_reaches_both_workers(
    database_url: str, tmp_path: Path
) -> None:
    seed_tasks(
        database_url,
        {
            "hang": {"handler": "hang", "cron": "0 0 1 1 *"},
            "tick": {"handler": "noop", "cron": "* * * * *"},
        },
        now=EPOCH,
    )
    env = sim_env(database_url, origin=time.time())
    workers = Workers(env=env, logs=tmp_path)
    eng = engine(database_url)

    def hang_run() -> sa.Row | None:  # type: ignore[type-arg]
        with eng.connect() as conn:
            return conn.execute(
                sa.select(scheduler_task_runs)
                .join(scheduler_tasks)
                .where(scheduler_tasks.c.name == "hang")
                .order_by(scheduler_task_runs.c.id.desc())
            ).first()

    try:
        runner = workers.start(MB_TEST_RUN_AT_START="hang")
        other = workers.start()
        workers.wait_ready(runner, other)
        run = wait_for(hang_run, timeout=30, what="the hang run to start")
        assert run.status == "running" and run.node_id == f"node-{runner}"

        # Cancelled from a third process (the CLI), it stops on the worker that runs it.
        cancelled = mediabeat("runs", "cancel", str(run.id), env=env)
        assert cancelled.returncode == 0, cancelled.stderr
        assert f"cancel requested for run {run.id} of hang on node node-{runner}" in cancelled.stdout
        ended = wait_for(
            lambda: (r := hang_run()) is not None and r.status != "running" and r, timeout=30, what="the cancel"
        )
        assert ended.status == "cancelled" and ended.cancelled_by.startswith("cli:"), ended
        assert ended.error == f"cancelled by {ended.cancelled_by}"
        again = mediabeat("runs", "cancel", str(run.id), env=env)
        assert again.returncode == 1 and "already finished (cancelled)" in again.stderr

        # The every-minute task runs every second on one worker or the other, until the pause.
        wait_for(lambda: len(scheduled_runs(database_url)) >= 3, timeout=30, what="scheduled runs")
        paused = mediabeat("scheduler", "pause", "--reason", "maintenance", env=env)
        assert paused.returncode == 0 and "paused by cli:" in paused.stdout, paused.stderr
        for name in (runner, other):
            wait_for(lambda n=name: "scheduler paused by cli:" in workers.log(n), timeout=30, what=f"{name} to pause")
        with eng.connect() as conn:
            paused_at = conn.execute(sa.select(scheduler_pause.c.changed_at)).scalar_one()
        paused_at = paused_at.replace(tzinfo=UTC) if paused_at.tzinfo is None else paused_at
        before = len(scheduled_runs(database_url))
        time.sleep(3)  # three simulated minutes: three occurrences would have started
        rows = scheduled_runs(database_url)
        assert len(rows) == before
        # No scheduled run started after the pause (a claim in flight as it committed may end with it).
        started = [r.started_at.replace(tzinfo=UTC) if r.started_at.tzinfo is None else r.started_at for r in rows]
        assert max(started) <= paused_at + timedelta(seconds=30)
        status = mediabeat("scheduler", "status", env=env)
        assert "paused by cli:" in status.stdout and "maintenance" in status.stdout

        resumed = mediabeat("scheduler", "resume", env=env)
        assert resumed.returncode == 0 and "running" in resumed.stdout
        wait_for(lambda: len(scheduled_runs(database_url)) > before, timeout=30, what="runs after the resume")
        for name in (runner, other):
            wait_for(lambda n=name: "scheduler resumed by cli:" in workers.log(n), timeout=30, what=f"{name} to resume")
        after = [r for r in scheduled_runs(database_url) if r.scheduled_for.replace(tzinfo=UTC) > paused_at]
        assert after and after[0].missed >= 1  # run_once: the occurrences missed while paused, run once
    finally:
        codes = workers.stop_all()
        eng.dispose()
    assert set(codes.values()) == {0}, workers.all_logs()
