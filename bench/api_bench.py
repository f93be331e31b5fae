"""API benchmark: p50/p99 of GET /scheduler/tasks, /runs?limit=100 and /stats with 1,000,000 runs of history.

    .venv/bin/python bench/api_bench.py [--postgres postgresql://postgres@127.0.0.1/postgres] [--rows N] [--requests N]

`mediabeat serve` (uvicorn) runs in a subprocess on 127.0.0.1; this process is the client, one
keep-alive connection, requests one after another. Each endpoint is measured twice in the same
run: against the full history and, as the baseline, against an empty one; GET /healthz (no
database, no authentication) is the floor of the stack itself.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mediabeat.auth.passwords import hash_password
from mediabeat.db import migrate
from mediabeat.db.engine import sync_url
from mediabeat.db.tables import api_tokens, scheduler_tasks, users
from mediabeat.domain.secrets import generate_token, hash_secret, token_prefix

TASKS = 20
ENDPOINTS = ["/api/v1/scheduler/tasks", "/api/v1/scheduler/runs?limit=100", "/api/v1/scheduler/stats"]
TARGET_MS = {"/api/v1/scheduler/stats": 50.0}
# The dashboard's pages, fetched with a session cookie as a browser does; each must render in <= 100 ms.
DASHBOARD_PAGES = [
    "/app/admin/scheduler",
    "/app/admin/scheduler/runs",
    "/app/admin/scheduler/runs?task=bench-03&status=failed",
    "/app/admin/scheduler/tasks/bench-01",
    "/app/admin/jobs",
]
PAGE_TARGET_MS = 100.0
RUN_COLUMNS = ("task_id", "trigger", "scheduled_for", "started_at", "finished_at", "duration_ms", "status", "missed")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def seed_common(url: str) -> str:
    """Tasks and an admin with a token; returns the token."""
    engine = sa.create_engine(sync_url(url))
    now = datetime.now(UTC)
    token = generate_token()
    with engine.begin() as conn:
        conn.execute(
            scheduler_tasks.insert(),
            [
                {
                    "name": f"bench-{i:02d}",
                    "handler": "nightly_cleanup",
                    "cron": "*/5 * * * *",
                    "timezone": "UTC",
                    "enabled": i % 4 != 0,
                    "next_run_at": now + timedelta(minutes=5),
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(TASKS)
            ],
        )
        user_id = conn.execute(
            users.insert()
            .values(email="bench@example.test", password_hash=hash_password("bench-pass-123456"), role="admin")
            .values(created_at=now)
            .returning(users.c.id)
        ).scalar_one()
        conn.execute(
            api_tokens.insert().values(
                user_id=user_id, name="bench", token_hash=hash_secret(token), prefix=token_prefix(token), created_at=now
            )
        )
        task_ids = [r[0] for r in conn.execute(sa.select(scheduler_tasks.c.id))]
    engine.dispose()
    Path(f"/tmp/.mb-bench-{os.getpid()}").write_text(",".join(map(str, task_ids)))
    return token


def run_rows(task_ids: list[int], rows: int) -> Iterator[tuple[object, ...]]:
    """`rows` runs spread over the last 60 days, newest last; 90% succeeded, 8% failed, 2% skipped."""
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=60)
    step = timedelta(days=60) / max(rows, 1)
    for n in range(rows):
        at = start + step * n
        duration = rng.randint(20, 5000)
        roll = rng.random()
        status = "succeeded" if roll < 0.9 else "failed" if roll < 0.98 else "skipped"
        yield (
            task_ids[n % len(task_ids)],
            "schedule",
            at,
            at,
            at + timedelta(milliseconds=duration),
            duration,
            status,
            0,
        )


def bulk_runs_sqlite(path: str, task_ids: list[int], rows: int) -> None:
    import sqlite3

    fmt = "%Y-%m-%d %H:%M:%S.%f"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    placeholders = ", ".join("?" for _ in RUN_COLUMNS)
    sql = f"INSERT INTO scheduler_task_runs ({', '.join(RUN_COLUMNS)}) VALUES ({placeholders})"
    batch: list[tuple[object, ...]] = []
    for row in run_rows(task_ids, rows):
        task_id, trigger, sched, started, finished, duration, status, missed = row
        batch.append(
            (
                task_id,
                trigger,
                sched.replace(tzinfo=None).strftime(fmt),  # type: ignore[attr-defined]
                started.replace(tzinfo=None).strftime(fmt),  # type: ignore[attr-defined]
                finished.replace(tzinfo=None).strftime(fmt),  # type: ignore[attr-defined]
                duration,
                status,
                missed,
            )
        )
        if len(batch) >= 50_000:
            conn.executemany(sql, batch)
            batch.clear()
    conn.executemany(sql, batch)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


def bulk_runs_postgres(url: str, task_ids: list[int], rows: int) -> None:
    import psycopg

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY scheduler_task_runs ({', '.join(RUN_COLUMNS)}) FROM STDIN") as copy:
            for row in run_rows(task_ids, rows):
                copy.write_row(row)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE scheduler_task_runs")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(url: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "MEDIABEAT_DATABASE_URL": url, "ENABLE_SCHEDULER": "false", "MEDIABEAT_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mediabeat", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise RuntimeError("serve did not start")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def measure(base: str, token: str, path: str, requests: int) -> tuple[float, float]:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for _ in range(max(10, requests // 10)):
            client.get(path).raise_for_status()
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return statistics.median(times), pct(times, 99)


def measure_page(base: str, path: str, requests: int) -> tuple[float, float]:
    """A dashboard page as a signed-in admin's browser fetches it (session cookie)."""
    with httpx.Client(base_url=base, timeout=30) as client:
        client.post("/api/v1/auth/login", json={"email": "bench@example.test", "password": "bench-pass-123456"})
        for _ in range(max(10, requests // 10)):
            client.get(path).raise_for_status()
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return statistics.median(times), pct(times, 99)


def bench_backend(name: str, url: str, rows: int, requests: int, bulk: object) -> dict[str, tuple[float, float]]:
    migrate.upgrade(url)
    token = seed_common(url)
    task_ids = [int(x) for x in Path(f"/tmp/.mb-bench-{os.getpid()}").read_text().split(",")]
    results: dict[str, tuple[float, float]] = {}
    with serve(url) as base:
        results["/healthz"] = measure(base, token, "/healthz", requests)
        for path in ENDPOINTS:
            results[f"empty {path}"] = measure(base, token, path, requests)
        for path in DASHBOARD_PAGES:
            results[f"empty {path}"] = measure_page(base, path, requests)
    started = time.perf_counter()
    bulk(url if name == "PostgreSQL" else make_url(url).database, task_ids, rows)  # type: ignore[operator]
    print(f"{name}: inserted {rows:,} runs in {time.perf_counter() - started:.1f} s", flush=True)
    with serve(url) as base:
        for path in ENDPOINTS:
            results[path] = measure(base, token, path, requests)
        for path in DASHBOARD_PAGES:
            results[path] = measure_page(base, path, requests)
    return results


def report(name: str, results: dict[str, tuple[float, float]], rows: int) -> None:
    floor = results["/healthz"]
    print(f"\n{name}, {rows:,} runs; floor GET /healthz p50 {floor[0]:.1f} ms, p99 {floor[1]:.1f} ms")
    print(f"{'endpoint':<36} {'p50':>8} {'p99':>8}   {'baseline (empty) p50/p99':>26}   target p99")
    for path in ENDPOINTS:
        p50, p99 = results[path]
        b50, b99 = results[f"empty {path}"]
        target = TARGET_MS.get(path, 20.0)
        verdict = "ok" if p99 <= target else "MISSED"
        print(f"{path:<36} {p50:>6.1f}ms {p99:>6.1f}ms   {b50:>12.1f} / {b99:.1f} ms   <= {target:.0f} ms {verdict}")
    print(f"\n{'dashboard page':<56} {'p50':>8} {'p99':>8}   {'baseline (empty) p50/p99':>26}   target p50")
    for path in DASHBOARD_PAGES:
        p50, p99 = results[path]
        b50, b99 = results[f"empty {path}"]
        verdict = "ok" if p50 <= PAGE_TARGET_MS else "MISSED"
        figures = f"{p50:>6.1f}ms {p99:>6.1f}ms   {b50:>12.1f} / {b99:.1f} ms"
        print(f"{path:<56} {figures}   <= {PAGE_TARGET_MS:.0f} ms {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server (a scratch database is made there)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            report("SQLite", bench_backend("SQLite", url, args.rows, args.requests, bulk_runs_sqlite), args.rows)
    if args.postgres:
        admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        name = f"mbbench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
        try:
            results = bench_backend("PostgreSQL", url, args.rows, args.requests, bulk_runs_postgres)
            report("PostgreSQL", results, args.rows)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
    Path(f"/tmp/.mb-bench-{os.getpid()}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
