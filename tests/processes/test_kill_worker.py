"""kill -9 of a worker in the middle of a run, on a real PostgreSQL, with real processes and production timings.

The run becomes `abandoned` within 30 s, the crawl jobs it held go back to the queue once
their lease ends and another worker completes them, and no job is lost or completed twice.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from mediabeat.db.tables import media_crawl_jobs, organizations, scheduler_task_runs, scheduler_tasks

from .harness import Workers, base_env, engine, wait_for
from .worker_main import COMPLETIONS_DDL

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.xdist_group("worker-processes"),
    pytest.mark.parametrize("backend", ["postgres"], indirect=True),
    pytest.mark.timeout(300),  # generous: worker start-up is slow on a loaded machine
]
JOBS = 60


def prepare(database_url: str) -> None:
    now = datetime.now(UTC)
    eng = engine(database_url)
    with eng.begin() as conn:
        conn.exec_driver_sql(COMPLETIONS_DDL)
        conn.execute(scheduler_tasks.update().values(enabled=False))
        conn.execute(
            scheduler_tasks.insert().values(
                name="drain",
                handler="job_drain",
                cron="0 0 1 1 *",
                overlap_policy="allow",
                last_run_at=now,
                next_run_at=now + timedelta(days=300),
                created_at=now,
                updated_at=now,
            )
        )
        org = conn.execute(organizations.insert().values(name="Org", created_at=now).returning(organizations.c.id))
        org_id = org.scalar_one()
        conn.execute(
            media_crawl_jobs.insert(),
            [
                {
                    "org_id": org_id,
                    "url": f"https://news.example/{i}",
                    "url_hash": f"h{i}",
                    "status": "queued",
                    "run_after": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(JOBS)
            ],
        )
    eng.dispose()


def test_a_killed_worker_s_run_is_abandoned_and_its_jobs_finish_elsewhere(database_url: str, tmp_path: Path) -> None:
    prepare(database_url)
    # Production timings: run and node heartbeats every 5 s, a run is stale after 20 s.
    env = base_env(database_url, tick_seconds="60", heartbeat_seconds="5", stale_after_seconds="20")
    workers = Workers(env=env, logs=tmp_path)
    eng = engine(database_url)

    def completions() -> Counter[str]:
        with eng.connect() as conn:
            return Counter(node for (node,) in conn.exec_driver_sql("SELECT node FROM test_completions"))

    def leased_by_victim() -> set[int]:
        with eng.connect() as conn:
            rows = conn.execute(
                sa.select(media_crawl_jobs.c.id).where(
                    media_crawl_jobs.c.locked_by == "node-w1", media_crawl_jobs.c.status == "running"
                )
            )
            return {job_id for (job_id,) in rows}

    try:
        # The victim is slow (pairs of 0.5 s jobs): it cannot drain the queue before the
        # survivor is up, however slowly that one starts.
        slow = {"MB_TEST_JOB_SECONDS": "0.5", "MB_TEST_JOB_BATCH": "2"}
        victim = workers.start(MB_TEST_RUN_AT_START="drain", MB_TEST_JOB_LEASE_SECONDS="6", **slow)
        wait_for(lambda: completions()["node-w1"] >= 4, timeout=30, what="the first worker to complete jobs")
        survivor = workers.start(MB_TEST_RUN_AT_START="drain", MB_TEST_JOB_LEASE_SECONDS="6")
        wait_for(lambda: completions()["node-w2"] >= 2, timeout=30, what="the second worker to complete jobs")

        def kill_victim_while_it_holds_jobs() -> set[int]:
            # Frozen, the victim can send nothing more; after a moment the server has finished
            # whatever it had already been sent, so the jobs read as leased are exactly those
            # the victim holds. Between two batches it holds none: let it go on and try again.
            workers.pause(victim)
            time.sleep(0.5)
            if held := leased_by_victim():
                workers.kill(victim)
            else:
                workers.resume(victim)
            return held

        held: set[int] = set()
        deadline = time.monotonic() + 30
        while not held and time.monotonic() < deadline:
            held = kill_victim_while_it_holds_jobs()
        assert held, "the first worker never held a leased job"
        killed_at = time.monotonic()

        def victim_run_status() -> str | None:
            with eng.connect() as conn:
                return conn.execute(
                    sa.select(scheduler_task_runs.c.status).where(scheduler_task_runs.c.node_id == "node-w1")
                ).scalar_one()

        wait_for(lambda: victim_run_status() == "abandoned", timeout=35, what="the killed worker's run to be abandoned")
        abandoned_after = time.monotonic() - killed_at
        assert abandoned_after <= 30, f"abandoned {abandoned_after:.1f} s after the kill"

        def survivor_done() -> bool:
            with eng.connect() as conn:
                statuses = conn.execute(
                    sa.select(scheduler_task_runs.c.status).where(scheduler_task_runs.c.node_id == "node-w2")
                ).all()
            return [s for (s,) in statuses] == ["succeeded"]

        wait_for(survivor_done, timeout=60, what="the surviving worker to drain the queue")
        assert workers.alive() == [survivor]
    finally:
        codes = workers.stop_all()
    assert codes == {"w2": 0}, workers.all_logs()

    with eng.connect() as conn:
        jobs = conn.execute(sa.select(media_crawl_jobs)).all()
        per_job = Counter(j for (j,) in conn.exec_driver_sql("SELECT job_id FROM test_completions"))
        completed_by = dict(conn.exec_driver_sql("SELECT job_id, node FROM test_completions").all())
    eng.dispose()
    assert len(jobs) == JOBS
    assert {j.status for j in jobs} == {"succeeded"}, "no job is lost"
    assert set(per_job) == {j.id for j in jobs} and set(per_job.values()) == {1}, "each job completed exactly once"
    retaken = [j for j in jobs if j.id in held]
    assert len(retaken) == len(held) and all(j.attempts == 2 for j in retaken), "the victim's jobs ran again"
    assert {per_node for job_id, per_node in completed_by.items() if job_id in held} == {"node-w2"}
    assert "maintenance lease" in workers.log("w2")
