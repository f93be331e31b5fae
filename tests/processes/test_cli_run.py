"""`mediabeat tasks run` from a shell: handed to a running `mediabeat worker` when there is one, else run here."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from mediabeat.db.tables import scheduler_nodes, scheduler_task_runs, scheduler_tasks
from tests.processes.harness import mediabeat

from .harness import REPO, base_env, engine, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # CLI start-up is slow on a loaded machine


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = base_env(f"sqlite:///{tmp_path}/mb.db", stale_after_seconds="20")
    assert mediabeat("db", "upgrade", env=environment).returncode == 0
    return environment


def node_running(database_url: str, node_id: str) -> bool:
    eng = engine(database_url)
    try:
        with eng.connect() as conn:
            query = sa.select(scheduler_nodes.c.id).where(
                scheduler_nodes.c.id == node_id, scheduler_nodes.c.stopped_at.is_(None)
            )
            return conn.execute(query).first() is not None
    finally:
        eng.dispose()


def test_tasks_run_hands_the_run_to_a_running_worker(env: dict[str, str], tmp_path: Path) -> None:
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "mediabeat", "worker"],
            env={**env, "MEDIABEAT_NODE_ID": "worker-1"},
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = env["MEDIABEAT_DATABASE_URL"]
        wait_for(lambda: node_running(url, "worker-1"), timeout=60, what="the worker to register")
        ran = mediabeat("tasks", "run", "nightly-cleanup", "--json", env=env)
        assert ran.returncode == 0, ran.stderr
        assert "handing the run to node worker-1" in ran.stderr
        run = json.loads(ran.stdout)
        assert (run["status"], run["node_id"], run["trigger"], run["triggered_by"]) == (
            "succeeded",
            "worker-1",
            "manual",
            "cli",
        )
        assert run["result"]["task_runs_deleted"] == 0
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    alone = mediabeat("tasks", "run", "nightly-cleanup", env=env)
    assert alone.returncode == 0, alone.stderr
    assert "no node is running: running it in this process" in alone.stderr
    assert "succeeded" in alone.stdout and "in this process" in alone.stdout


def test_a_run_skipped_by_the_overlap_policy_exits_0_with_its_reason(env: dict[str, str]) -> None:
    now = datetime.now(UTC)
    eng = engine(env["MEDIABEAT_DATABASE_URL"])
    with eng.begin() as conn:
        task_id = conn.execute(
            sa.select(scheduler_tasks.c.id).where(scheduler_tasks.c.name == "nightly-cleanup")
        ).scalar_one()
        running = conn.execute(
            scheduler_task_runs.insert()
            .values(
                task_id=task_id,
                trigger="manual",
                scheduled_for=now,
                started_at=now,
                status="running",
                node_id="elsewhere",
                heartbeat_at=now,
            )
            .returning(scheduler_task_runs.c.id)
        ).scalar_one()
    eng.dispose()
    skipped = mediabeat("tasks", "run", "nightly-cleanup", env=env)
    assert skipped.returncode == 0, skipped.stderr
    assert skipped.stdout.strip() == (
        f"skipped: task 'nightly-cleanup' is already running (run {running}) and its overlap policy is forbid"
    )
    assert "error" not in skipped.stderr
    as_json = json.loads(mediabeat("tasks", "run", "nightly-cleanup", "--json", env=env).stdout)
    assert (as_json["status"], as_json["running_run_id"]) == ("skipped", running)
