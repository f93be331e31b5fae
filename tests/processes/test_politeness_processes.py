"""Three worker processes crawl one loopback host together and keep its per-host limits between them.

Each worker runs crawl-queue on its own share of a queue of pages on one host, all three at
once, with a per-host delay of DELAY seconds and at most CONCURRENCY requests at a time. The
host records when each request arrives and how many it is serving; the test fails on any two
arrivals closer than the delay, or more requests at once than allowed. The delay is a lower
bound on spacing, so nothing here depends on how fast the machine is.

Tolerance: an arrival may come up to 10% of the delay (100 ms) early on the one before it. A
start is reserved by the database, but the request reaches the host after the worker wakes up,
and a worker woken late on a loaded machine pulls its arrival towards the next one's (up to
60 ms seen at a load of 14 on 2 cores).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mediabeat.db.tables import media_crawl_jobs, organizations, scheduler_task_runs, scheduler_tasks

from .harness import Workers, base_env, engine, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("worker-processes"),
    pytest.mark.timeout(300),  # worker start-up is slow on a loaded machine
]

WORKERS = 3
PAGES_EACH = 6
DELAY = 1.0
TOLERANCE = 0.1 * DELAY
CONCURRENCY = 2
# Longer than two spacings: without a shared limit, three requests would overlap.
RESPONSE_SECONDS = 2.5
ROBOTS = b"User-agent: *\nAllow: /\n"
PARAGRAPH = (
    "The council met on Tuesday evening to discuss the new harbour bridge, which has been delayed "
    "by two years and now costs twice what was first announced. Residents spoke for three hours. "
)


def page(n: int) -> bytes:
    body = "".join(f"<p>{PARAGRAPH} Section {k} of story {n}.</p>" for k in range(6))
    return (
        f"<!doctype html><html lang='en'><head><title>Story {n}</title></head>"
        f"<body><article><h1>Story {n}</h1>{body}</article></body></html>"
    ).encode()


class Host(ThreadingHTTPServer):
    """A web host on 127.0.0.1 that records each request's arrival and the most it served at once."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, str]] = []
        self.serving = 0
        self.most_serving = 0

    def arrive(self, path: str) -> None:
        with self.lock:
            self.arrivals.append((time.monotonic(), path))
            self.serving += 1
            self.most_serving = max(self.most_serving, self.serving)

    def leave(self) -> None:
        with self.lock:
            self.serving -= 1


class _Handler(BaseHTTPRequestHandler):
    server: Host
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.arrive(self.path)
        if self.path == "/robots.txt":
            body, kind = ROBOTS, "text/plain"
        else:
            time.sleep(RESPONSE_SECONDS)
            body, kind = page(int(self.path.rsplit("/", 1)[-1].split(".")[0])), "text/html; charset=utf-8"
        # Counted out before the answer goes: the client cannot free its slot before it has the answer.
        self.server.leave()
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def prepare(database_url: str, urls: list[str]) -> None:
    """Only crawl-queue, run by hand; the pages queued for one organisation."""
    now = datetime.now(UTC)
    eng = engine(database_url)
    with eng.begin() as conn:
        conn.execute(scheduler_tasks.update().values(enabled=False))
        conn.execute(
            scheduler_tasks.update().where(scheduler_tasks.c.name == "crawl-queue").values(overlap_policy="allow")
        )
        org_id = conn.execute(
            organizations.insert().values(name="Org", created_at=now).returning(organizations.c.id)
        ).scalar_one()
        conn.execute(
            media_crawl_jobs.insert(),
            [
                {
                    "org_id": org_id,
                    "url": url,
                    "url_hash": f"h{n}",
                    "status": "queued",
                    "run_after": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for n, url in enumerate(urls)
            ],
        )
    eng.dispose()


def violations(arrivals: list[tuple[float, str]]) -> list[str]:
    times = sorted(at for at, _ in arrivals)
    return [f"{later - earlier:.3f} s" for earlier, later in pairwise(times) if later - earlier < DELAY - TOLERANCE]


def test_three_workers_keep_one_host_s_delay_and_concurrency_together(database_url: str, tmp_path: Path) -> None:
    host = Host()
    serving = threading.Thread(target=host.serve_forever, daemon=True)
    serving.start()
    port = host.server_address[1]
    urls = [f"http://127.0.0.1:{port}/news/{n}.html" for n in range(WORKERS * PAGES_EACH)]
    prepare(database_url, urls)
    go = tmp_path / "go"
    env = base_env(
        database_url,
        crawler_allow_private_networks="true",
        crawler_per_host_delay=str(DELAY),
        crawler_per_host_concurrency=str(CONCURRENCY),
        crawl_batch=str(PAGES_EACH),
        extraction_workers="1",
        tick_seconds="60",
        crawler_shared_politeness="true",  # the default on PostgreSQL; SQLite needs it said
        crawler_total_timeout="120",  # a fetch's timeout includes its wait for a slot: 18 pages queue here
    )
    workers = Workers(env=env, logs=tmp_path)
    eng = engine(database_url)

    def runs() -> list[sa.Row[Any]]:
        with eng.connect() as conn:
            return list(conn.execute(sa.select(scheduler_task_runs.c.status, scheduler_task_runs.c.result)).all())

    try:
        names = [workers.start(MB_TEST_RUN_AT_START="crawl-queue", MB_TEST_GO_FILE=str(go)) for _ in range(WORKERS)]
        workers.wait_ready(*names, timeout=120)
        go.touch()
        wait_for(
            lambda: len(runs()) == WORKERS and all(status != "running" for status, _ in runs()),
            timeout=180,
            what="the three crawl-queue runs to finish",
        )
    finally:
        codes = workers.stop_all()
        eng.dispose()
        host.shutdown()
        host.server_close()
    assert set(codes.values()) == {0}, workers.all_logs()
    finished = runs()
    # Each worker claimed its own share, so all three crawled the host at the same time.
    assert sorted((status, result["claimed"]) for status, result in finished) == [("succeeded", PAGES_EACH)] * WORKERS
    assert sum(result["succeeded"] for _, result in finished) == len(urls), finished
    paths = [path for _, path in host.arrivals]
    assert sorted(p for p in paths if p != "/robots.txt") == sorted(u.split(str(port), 1)[1] for u in urls)
    first = min(at for at, _ in host.arrivals)
    timeline = ", ".join(f"{at - first:.3f} {path}" for at, path in sorted(host.arrivals))
    assert violations(host.arrivals) == [], f"arrivals closer than {DELAY} s - {TOLERANCE:.2f} s: {timeline}"
    assert host.most_serving <= CONCURRENCY
