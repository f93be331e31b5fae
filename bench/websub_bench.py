"""WebSub push benchmark: an article published on the demo hub -> its crawl job stored, on the real clock.

    .venv/bin/python bench/websub_bench.py [--postgres postgresql://postgres@127.0.0.1/postgres] [--rounds N]

Everything runs on 127.0.0.1: the demo site with its hub (uvicorn, one thread), the MediaBeat app
(uvicorn, another thread, MEDIABEAT_PUBLIC_URL pointing at it) and this process's loop, which adds
every feed of the demo site, runs hourly-rss-fetch once (the hubs are found), websub-renew once
(the hub verifies each callback), and then, each round, moves the demo site's clock by one article
interval (one new article per feed) and pings the hub (`hub.mode=publish`, as a publisher does).
The delay of an item is from that ping to its crawl-job row being visible in the database (polled
every 5 ms). The baseline is hourly polling: an item waits on average 30 minutes for the next fetch.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediabeat.app import create_app
from mediabeat.clock import FakeClock, SystemClock
from mediabeat.db import migrate
from mediabeat.db.engine import Database
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import JobStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.stores.websub import WebSubStore
from mediabeat.demo.content import DemoSiteConfig, latest_articles
from mediabeat.demo.feeds import feed_path
from mediabeat.demo.site import create_demo_app, running_demo_site
from mediabeat.domain.websub import SubscriptionState
from mediabeat.settings import Settings
from mediabeat.tasks.base import RunContext
from mediabeat.tasks.wiring import build_crawler_handlers, build_websub_renewal

SITE = DemoSiteConfig(feed_size=10, article_interval_s=600)
START = datetime(2026, 1, 3, 9, 0, 30, tzinfo=UTC)


def run_context(name: str) -> RunContext:
    now = datetime.now(UTC)
    return RunContext(1, name, "manual", now, now, {}, logging.getLogger("bench"))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_verified(db: Database, count: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        subs = await WebSubStore(db).list()
        if sum(1 for s in subs if s.state == SubscriptionState.VERIFIED) == count:
            return
        await asyncio.sleep(0.05)
    raise SystemExit("the demo hub did not verify every subscription within 60 s")


async def measure(database_url: str, rounds: int) -> list[float]:
    demo_clock = FakeClock(START)
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=database_url, public_url=public, enable_scheduler=False, crawler_allow_private_networks=True
    )
    db = Database(database_url)
    demo_app = create_demo_app(SITE, now=demo_clock.now)
    with running_demo_site(demo_app) as (base,), running_demo_site(create_app(settings), port=port, lifespan=True):
        org = await OrgStore(db).create("bench", now=START)
        topics = [base + feed_path(SITE, s) for s in SITE.section_names()]
        await FeedStore(db).add_many(org.id, [(t, None) for t in topics], now=START)
        fetch, crawl = build_crawler_handlers(settings, db, SystemClock())
        await fetch(run_context("hourly-rss-fetch"))
        await crawl.aclose()
        await build_websub_renewal(settings, db)(run_context("websub-renew"))
        await wait_verified(db, len(topics))
        delays: list[float] = []
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(rounds):
                demo_clock.advance(SITE.article_interval_s)
                wanted = {base + latest_articles(SITE, s, demo_clock.now(), 1)[0].path for s in SITE.section_names()}
                started = time.perf_counter()
                for topic in topics:
                    await http.post(f"{base}/hub", data={"hub.mode": "publish", "hub.url": topic})
                delays += await wait_for_jobs(db, wanted, started)
    await db.dispose()
    return delays


async def wait_for_jobs(db: Database, wanted: set[str], started: float) -> list[float]:
    seen: dict[str, float] = {}
    deadline = time.monotonic() + 30
    while len(seen) < len(wanted) and time.monotonic() < deadline:
        for job in await JobStore(db).list_jobs(limit=200):
            if job.url in wanted and job.url not in seen:
                seen[job.url] = time.perf_counter() - started
        await asyncio.sleep(0.005)
    if len(seen) < len(wanted):
        raise SystemExit(f"{len(wanted) - len(seen)} pushed items were not queued within 30 s")
    return list(seen.values())


def postgres_database(admin_url: str) -> str:
    name = f"websub_bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a scratch database is made on it)")
    parser.add_argument("--rounds", type=int, default=20, help="publications per feed (default 20)")
    args = parser.parse_args()
    if args.postgres:
        url, label = postgres_database(args.postgres), "PostgreSQL"
    else:
        url, label = f"sqlite:///{tempfile.mkdtemp()}/websub_bench.db", "SQLite"
    migrate.upgrade(url)
    try:
        delays = sorted(asyncio.run(measure(url, args.rounds)))
    finally:
        if args.postgres:
            drop_database(args.postgres, url)
    q = statistics.quantiles(delays, n=100)
    print(f"{label}: {len(delays)} pushed items ({len(SITE.section_names())} feeds x {args.rounds} rounds)")
    p50, p95, worst = q[49] * 1000, q[94] * 1000, delays[-1] * 1000
    print(f"publish on the demo hub -> crawl job stored: p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {worst:.0f} ms")
    print("target: p50 <= 5 s; baseline (hourly polling): mean wait 30 min, max 60 min")


if __name__ == "__main__":
    main()
