"""Crawl-job queue throughput on PostgreSQL, beside Procrastinate and a bare SQL loop; and failover time.

    # once: Procrastinate in its own environment (never in the project's dependencies)
    python3 -m venv /tmp/bench-venv && /tmp/bench-venv/bin/pip install procrastinate
    # then, from the repository root
    .venv/bin/python bench/queue_bench.py [--postgres postgresql://postgres@127.0.0.1/postgres]
        [--jobs 20000] [--procrastinate-jobs 3000] [--procrastinate-python /tmp/bench-venv/bin/python]

All on the same PostgreSQL, in one run, with 1, 2 and 4 worker processes:
- MediaBeat: JobStore.claim (100 jobs per statement, a lease, FOR UPDATE SKIP LOCKED), a
  no-op "crawl", then JobStore.complete_many for the batch (MEDIABEAT_BENCH_PER_JOB=1:
  JobStore.complete for each job, one transaction each);
- Procrastinate: the same no-op jobs through its worker (concurrency 1 per process);
- bare SQL: the same claim and complete statements from a plain psycopg loop, no framework
  (the practical limit).
Then failover: two real `mediabeat worker` processes; the one that ran a task's last
occurrence is killed with SIGKILL just before the next one, which must start on the other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BATCH = 100
# MEDIABEAT_BENCH_PER_JOB=1: complete each job in its own transaction (JobStore.complete) instead of
# the batch's jobs in one statement (JobStore.complete_many); the bare loop does the same.
PER_JOB = os.environ.get("MEDIABEAT_BENCH_PER_JOB") == "1"
PROCESSES = (1, 2, 4)

CLAIM_SQL = """
UPDATE media_crawl_jobs SET status = 'running', locked_by = %(worker)s, locked_until = %(until)s,
    attempts = attempts + 1, updated_at = %(now)s
WHERE id IN (
    SELECT id FROM media_crawl_jobs WHERE status = 'queued' AND run_after <= %(now)s
    ORDER BY priority DESC, run_after, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING *"""
COMPLETE_SQL = """
UPDATE media_crawl_jobs SET status = 'succeeded', locked_by = NULL, locked_until = NULL, updated_at = %(now)s,
    finished_at = %(now)s, article_id = NULL, last_error = NULL
WHERE id = ANY(%(ids)s) AND status = 'running' AND locked_by = %(worker)s"""


# -- children: one worker process each; they print {"done": n, "end": unix time} -------------


def wait_until(start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))


async def child_mediabeat(url: str, start_at: float, worker: str) -> dict[str, float]:
    from mediabeat.db.engine import Database
    from mediabeat.db.stores.jobs import JobStore

    db = Database(url)
    store = JobStore(db)
    await db.ping()  # connect before the clock starts
    await asyncio.sleep(max(0.0, start_at - time.time()))
    done = 0
    while jobs := await store.claim(worker=worker, now=datetime.now(UTC), limit=BATCH, lease=timedelta(minutes=5)):
        finished = [job.id for job in jobs]  # the no-op crawl
        if PER_JOB:
            for job_id in finished:
                done += await store.complete(job_id, worker=worker, now=datetime.now(UTC), article_id=None)
        else:
            done += await store.complete_many(finished, worker=worker, now=datetime.now(UTC))
    end = time.time()
    await db.dispose()
    return {"done": done, "end": end}


def child_bare(url: str, start_at: float, worker: str) -> dict[str, float]:
    import psycopg

    done = 0
    with psycopg.connect(url, autocommit=True) as conn:
        wait_until(start_at)
        while True:
            now = datetime.now(UTC)
            with conn.transaction():
                jobs = conn.execute(
                    CLAIM_SQL, {"worker": worker, "until": now + timedelta(minutes=5), "now": now, "limit": BATCH}
                ).fetchall()
            if not jobs:
                break
            ids = [job[0] for job in jobs]  # the no-op crawl
            for chunk in [[i] for i in ids] if PER_JOB else [ids]:
                with conn.transaction():
                    cur = conn.execute(COMPLETE_SQL, {"ids": chunk, "worker": worker, "now": datetime.now(UTC)})
                done += cur.rowcount
    return {"done": done, "end": time.time()}


async def child_procrastinate(url: str, start_at: float, worker: str) -> dict[str, float]:
    import logging

    import procrastinate  # only in the benchmark's own environment

    logging.getLogger("procrastinate").setLevel(logging.ERROR)  # it warns that the app lives in __main__
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    done = 0

    @app.task(name="noop")
    async def noop() -> None:
        nonlocal done
        done += 1

    async with app.open_async():
        await asyncio.sleep(max(0.0, start_at - time.time()))
        await app.run_worker_async(
            concurrency=1,
            wait=False,
            listen_notify=False,
            install_signal_handlers=False,
            fetch_job_polling_interval=0.05,
            name=worker,
        )
    return {"done": done, "end": time.time()}


def child_main(kind: str, url: str, start_at: float, worker: str) -> None:
    if kind == "mediabeat":
        result = asyncio.run(child_mediabeat(url, start_at, worker))
    elif kind == "bare":
        result = child_bare(url, start_at, worker)
    else:
        result = asyncio.run(child_procrastinate(url, start_at, worker))
    print(json.dumps(result))


# -- the parent: databases, job sets, timing ------------------------------------------------------


def admin_url(base: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(base).set(database=database).render_as_string(hide_password=False)


def create_database(base: str, name: str) -> str:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url(base, name)


def drop_database(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset_mediabeat_jobs(url: str, count: int) -> None:
    import psycopg

    now = datetime.now(UTC)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE media_crawl_jobs")
        org = conn.execute("SELECT id FROM organizations LIMIT 1").fetchone()
        if org is None:
            org = conn.execute(
                "INSERT INTO organizations (name, created_at) VALUES ('bench', now()) RETURNING id"
            ).fetchone()
        assert org is not None
        conn.execute(
            """INSERT INTO media_crawl_jobs (org_id, url, url_hash, status, attempts, max_attempts, run_after,
                   created_at, updated_at)
               SELECT %(org)s, 'https://bench.example/' || i, md5(i::text), 'queued', 0, 5, %(now)s, %(now)s, %(now)s
               FROM generate_series(1, %(n)s) AS i""",
            {"org": org[0], "now": now, "n": count},
        )
        conn.execute("VACUUM ANALYZE media_crawl_jobs")


def reset_procrastinate_jobs(url: str, python: str, count: int) -> None:
    """Empty Procrastinate's queue and defer `count` no-op jobs through its own API (one batch)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE procrastinate_jobs CASCADE")
    code = (
        "import asyncio, procrastinate\n"
        f"app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo={url!r}))\n"
        "@app.task(name='noop')\nasync def noop(): pass\n"
        "async def main():\n"
        "    async with app.open_async():\n"
        f"        await noop.batch_defer_async(*[{{}}] * {count})\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([python, "-c", code], check=True, capture_output=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE procrastinate_jobs")


def apply_procrastinate_schema(url: str, python: str) -> None:
    code = (
        "import procrastinate\n"
        f"app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo={url!r}))\n"
        "with app.open():\n    app.schema_manager.apply_schema()\n"
    )
    subprocess.run([python, "-c", code], check=True, capture_output=True)


def run_children(kind: str, url: str, processes: int, python: str, jobs: int) -> float:
    """Start `processes` workers that begin together; return jobs per second over the drain."""
    warmup = 4.0 if kind != "bare" else 2.0
    start_at = time.time() + warmup + processes * 0.5
    procs = [
        subprocess.Popen(
            [python, __file__, "child", kind, url, repr(start_at), f"{kind}-{i}"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for i in range(processes)
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"{kind} worker failed (exit {proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    done = sum(int(r["done"]) for r in results)
    if done != jobs:
        print(f"  warning: {kind} completed {done} of {jobs} jobs")
    return done / (max(r["end"] for r in results) - start_at)


# -- failover ---------------------------------------------------------------------------------------


def failover(base: str, trials: int) -> list[float]:
    """Seconds from the SIGKILL of the node that ran a task's last occurrence to the next one starting elsewhere."""
    import psycopg

    from mediabeat.db import migrate
    from mediabeat.schedule import parse_schedule

    name = f"mbbench_failover_{uuid.uuid4().hex[:8]}"
    url = create_database(base, name)
    migrate.upgrade(url)
    speed = 10.0  # a simulated minute every 6 s; the task runs every simulated minute
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    origin = time.time() + 2
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE scheduler_tasks SET enabled = false")
        first = parse_schedule("* * * * *").next_fire(epoch)
        conn.execute(
            """INSERT INTO scheduler_tasks (name, handler, cron, next_run_at, last_run_at, created_at, updated_at)
               VALUES ('minutely', 'nightly_cleanup', '* * * * *', %s, %s, %s, %s)""",
            (first, epoch, epoch, epoch),
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIABEAT_")}
    env.update(
        MEDIABEAT_DATABASE_URL=url,
        MEDIABEAT_CLOCK_EPOCH=epoch.isoformat(),
        MEDIABEAT_CLOCK_SPEED=str(speed),
        MEDIABEAT_CLOCK_ORIGIN=str(origin),
        MEDIABEAT_LOG_LEVEL="WARNING",
    )
    workers: dict[str, subprocess.Popen[bytes]] = {}
    count = 0

    def start() -> None:
        nonlocal count
        count += 1
        node = f"node-{count}"
        workers[node] = subprocess.Popen(
            [sys.executable, "-m", "mediabeat", "worker"], env=dict(env, MEDIABEAT_NODE_ID=node), cwd=REPO
        )

    def sim_to_real(when: datetime) -> float:
        return origin + (when - epoch).total_seconds() / speed

    def last_run(conn: psycopg.Connection[Any]) -> tuple[datetime, str] | None:
        row = conn.execute(
            "SELECT scheduled_for, node_id FROM scheduler_task_runs r JOIN scheduler_tasks t ON t.id = r.task_id "
            "WHERE t.name = 'minutely' ORDER BY scheduled_for DESC LIMIT 1"
        ).fetchone()
        return (row[0], row[1]) if row else None

    timings = []
    try:
        start()
        start()
        with psycopg.connect(url, autocommit=True) as conn:
            for _ in range(trials):
                deadline = time.time() + 60
                while (last := last_run(conn)) is None or time.time() > sim_to_real(last[0]) + 3.5:
                    if time.time() > deadline:
                        raise SystemExit("failover: no run seen")
                    time.sleep(0.05)  # wait for a fresh occurrence, well before the next
                scheduled, owner = last
                following = scheduled + timedelta(minutes=1)
                time.sleep(max(0.0, sim_to_real(following) - 0.3 - time.time()))
                workers.pop(owner).send_signal(signal.SIGKILL)
                killed = time.time()
                while (seen := last_run(conn)) is None or seen[0] < following:
                    if time.time() > killed + 60:
                        raise SystemExit("failover: the next occurrence never ran")
                    time.sleep(0.01)
                assert seen[1] != owner
                timings.append(time.time() - killed)
                start()  # bring the cluster back to two nodes
    finally:
        for proc in workers.values():
            proc.send_signal(signal.SIGTERM)
        for proc in workers.values():
            proc.wait(timeout=60)
        drop_database(base, name)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("MEDIABEAT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1/postgres"),
    )
    parser.add_argument("--jobs", type=int, default=20_000, help="no-op jobs per MediaBeat and bare-SQL run")
    parser.add_argument("--procrastinate-jobs", type=int, default=3_000, help="no-op jobs per Procrastinate run")
    parser.add_argument("--procrastinate-python", default="/tmp/bench-venv/bin/python")
    parser.add_argument("--failover-trials", type=int, default=3)
    args = parser.parse_args()

    from mediabeat.db import migrate

    if not Path(args.procrastinate_python).exists():
        raise SystemExit(f"no Python at {args.procrastinate_python}: see the top of this file to install Procrastinate")
    mode = "per-job complete" if PER_JOB else "batch complete"
    print(
        f"# queue benchmark ({mode})  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  {platform.node()}  {os.cpu_count()} CPUs"
    )
    tag = uuid.uuid4().hex[:8]
    ours, theirs = f"mbbench_queue_{tag}", f"mbbench_procrastinate_{tag}"
    ours_url, theirs_url = create_database(args.postgres, ours), create_database(args.postgres, theirs)
    rows = []
    try:
        migrate.upgrade(ours_url)
        apply_procrastinate_schema(theirs_url, args.procrastinate_python)
        for processes in PROCESSES:
            reset_mediabeat_jobs(ours_url, args.jobs)
            mediabeat = run_children("mediabeat", ours_url, processes, sys.executable, args.jobs)
            reset_mediabeat_jobs(ours_url, args.jobs)
            bare = run_children("bare", ours_url, processes, sys.executable, args.jobs)
            reset_procrastinate_jobs(theirs_url, args.procrastinate_python, args.procrastinate_jobs)
            proc = run_children(
                "procrastinate", theirs_url, processes, args.procrastinate_python, args.procrastinate_jobs
            )
            rows.append((processes, mediabeat, proc, bare))
            print(
                f"{processes} process(es): MediaBeat {mediabeat:8.0f} jobs/s | Procrastinate {proc:7.0f} jobs/s "
                f"({mediabeat / proc:4.1f}x) | bare SQL {bare:8.0f} jobs/s ({mediabeat / bare:4.0%} of it)",
                flush=True,
            )
    finally:
        drop_database(args.postgres, ours)
        drop_database(args.postgres, theirs)
    timings = failover(args.postgres, args.failover_trials)
    print(
        f"failover: a killed node's next occurrence started on another node after "
        f"{', '.join(f'{t:.2f}' for t in timings)} s (max {max(timings):.2f} s; target 10 s; Oban's leader lease: 30 s)"
    )
    print("\n| processes | MediaBeat jobs/s | Procrastinate jobs/s | ratio | bare SQL jobs/s | share of bare |")
    print("|---|---|---|---|---|---|")
    for processes, mediabeat, proc, bare in rows:
        print(
            f"| {processes} | {mediabeat:.0f} | {proc:.0f} | {mediabeat / proc:.1f}x "
            f"| {bare:.0f} | {mediabeat / bare:.0%} |"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child_main(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])
    else:
        main()
