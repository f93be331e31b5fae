"""Crawler benchmark: hourly-rss-fetch on 1,000 feeds (then again, unchanged), crawl-queue on 2,000 pages.

    .venv/bin/python bench/crawl_bench.py [--quick]

It starts a lean server (bench/bench_server.py) in a subprocess on 20 loopback addresses
(127.0.0.2 .. 127.0.0.21) with 50 ms of latency per response, and a second one without
latency for the article pages. (The demo site renders every response from its generator,
which on this machine made the server, not the crawler, the bottleneck.)
Each figure is printed beside a baseline measured in the same run:
- (a) hourly-rss-fetch over 1,000 feeds of 50 entries vs a naive sequential httpx +
  feedparser loop (timed on a sample of the feeds and scaled to all of them);
- (b) the same feeds again, all unchanged (304s);
- (c) 2,000 article pages through crawl-queue in a worker process (the handler the
  service runs, with its extraction pool) vs sequential fetch + the same extraction function in one
  process (on a sample), with pages/s and the peak RSS of the worker process alone and of the worker with its children.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from mediabeat.clock import SystemClock
from mediabeat.crawler.articles import extract_article
from mediabeat.crawler.urls import canonicalize, url_hash
from mediabeat.db import migrate
from mediabeat.db.engine import Database
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import JobStore, NewJob
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.settings import Settings
from mediabeat.tasks.base import RunContext
from mediabeat.tasks.wiring import build_crawler_handlers

HOSTS = [f"127.0.0.{i}" for i in range(2, 22)]
os.environ.setdefault("NO_PROXY", "127.0.0.0/8,localhost")


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_site(port: int, *, feeds: int, latency_ms: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(Path(__file__).with_name("bench_server.py")), str(port), str(latency_ms), str(feeds)]
    site = subprocess.Popen(
        [*command, *HOSTS], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True
    )
    assert site.stdout is not None
    if site.stdout.readline().strip() != b"ready":
        site.kill()
        raise SystemExit("the benchmark server did not start")
    return site


def stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, 15)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, 9)


def settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, crawler_allow_private_networks=True, node_id="bench", **overrides)


def ctx(name: str) -> RunContext:
    now = datetime.now(UTC)
    return RunContext(1, name, "manual", now, now, {}, logging.getLogger("bench"))


def naive_fetch(urls: list[str]) -> float:
    """Seconds per feed for a sequential httpx + feedparser loop."""
    import feedparser

    started = time.perf_counter()
    with httpx.Client(timeout=30) as client:
        for url in urls:
            feedparser.parse(client.get(url).content)
    return (time.perf_counter() - started) / len(urls)


def naive_extract(urls: list[str]) -> float:
    """Pages per second for sequential fetch + extraction in one process.

    The extraction is the very function the pool's workers run (trafilatura with the crawler's
    options), so the two sides of (c) do the same work per page.
    """
    extract_article(b"<html><body><p>warm up</p></body></html>", "http://127.0.0.1/")
    started = time.perf_counter()
    with httpx.Client(timeout=30) as client:
        for url in urls:
            extract_article(client.get(url).content, url)
    return len(urls) / (time.perf_counter() - started)


async def fetch_phase(database_url: str, feed_urls: list[str]) -> tuple[float, dict[str, Any], float, dict[str, Any]]:
    db = Database(database_url)
    org = await OrgStore(db).create("bench", now=datetime.now(UTC))
    await FeedStore(db).add_many(org.id, [(u, None) for u in feed_urls], now=datetime.now(UTC))
    fetch, _ = build_crawler_handlers(settings(database_url), db, SystemClock())
    started = time.perf_counter()
    first = dict(await fetch(ctx("hourly-rss-fetch")))
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    second = dict(await fetch(ctx("hourly-rss-fetch")))
    second_s = time.perf_counter() - started
    await db.dispose()
    return first_s, first, second_s, second


async def queue_pages(database_url: str, page_urls: list[str]) -> None:
    db = Database(database_url)
    org = await OrgStore(db).create("pages", now=datetime.now(UTC))
    async with db.write() as conn:
        from mediabeat.db.tables import media_crawl_jobs

        await conn.execute(media_crawl_jobs.delete())
    jobs = [NewJob(org.id, None, u, url_hash(u)) for u in page_urls]
    await JobStore(db).enqueue(jobs, now=datetime.now(UTC))
    await db.dispose()


def worker_main(database_url: str, batch: int) -> None:
    """Child process: build crawl-queue as the service does, warm the pool, wait for "go", run, report."""

    async def body() -> None:
        db = Database(database_url)
        _, crawl = build_crawler_handlers(
            settings(database_url, crawl_batch=batch, crawl_concurrency=16), db, SystemClock()
        )
        await crawl.pool.start()
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        started = time.perf_counter()
        result = dict(await crawl(ctx("crawl-queue")))
        elapsed = time.perf_counter() - started
        print(json.dumps({"seconds": elapsed, "result": result}), flush=True)
        await crawl.aclose()
        await db.dispose()

    asyncio.run(body())


def crawl_phase(database_url: str, batch: int) -> tuple[float, dict[str, Any], float, float]:
    worker = subprocess.Popen(
        [sys.executable, __file__, "--worker", database_url, "--batch", str(batch)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdin is not None and worker.stdout is not None
    peak = 0.0
    peak_alone = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_alone
        proc = psutil.Process(worker.pid)
        while not done.is_set():
            try:
                own = proc.memory_info().rss
                total = own + sum(c.memory_info().rss for c in proc.children(recursive=True) if c.is_running())
                peak = max(peak, total / 1024 / 1024)
                peak_alone = max(peak_alone, own / 1024 / 1024)
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert worker.stdout.readline().strip() == "ready"
    worker.stdin.write("go\n")
    worker.stdin.flush()
    report = json.loads(worker.stdout.readline())
    worker.wait(timeout=60)
    done.set()
    sampler.join()
    return float(report["seconds"]), report["result"], peak, peak_alone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer feeds and pages (about a minute)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=2000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker, args.batch)
        return
    feeds = 200 if args.quick else 1000
    pages = 400 if args.quick else 2000
    naive_feeds = 40 if args.quick else 100
    naive_pages = 100 if args.quick else 300
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared machine: figures are noisy)")
    tmp = Path(tempfile.mkdtemp(prefix="crawlbench"))
    database_url = f"sqlite:///{tmp / 'bench.db'}"
    migrate.upgrade(database_url)
    port, plain_port = free_port(HOSTS[0]), free_port(HOSTS[0])
    slow_site = start_site(port, feeds=feeds, latency_ms=50)
    fast_site = start_site(plain_port, feeds=0, latency_ms=0)
    try:
        feed_urls = [f"http://{HOSTS[k % len(HOSTS)]}:{port}/feeds/{k}.rss" for k in range(feeds)]
        per_feed = naive_fetch(feed_urls[:naive_feeds])
        first_s, first, second_s, second = asyncio.run(fetch_phase(database_url, feed_urls))
        naive_total = per_feed * feeds
        print(
            f"(a) hourly-rss-fetch, {feeds} feeds x 50 entries, 20 hosts, 50 ms latency: {first_s:.2f} s "
            f"({first['fetched']} fetched, {first['jobs_created']} jobs) | naive sequential httpx+feedparser: "
            f"{naive_total:.1f} s ({per_feed * 1000:.0f} ms/feed on {naive_feeds} feeds, scaled) -> "
            f"{naive_total / first_s:.1f}x   [target <= 5 s and >= 10x]"
        )
        print(
            f"(b) same feeds unchanged: {second_s:.2f} s ({second['not_modified']} not modified, "
            f"{second['jobs_created']} jobs) | naive loop without conditional GET: {naive_total:.1f} s   "
            f"[target <= 1 s]"
        )
        # Article pages of the latency-free server, spread over the 20 hosts.
        page_urls = [
            canonicalize(f"http://{HOSTS[n % len(HOSTS)]}:{plain_port}/a/{n // 50}/{n % 50}.html") for n in range(pages)
        ]
        page_urls = page_urls[:pages]
        baseline_rate = naive_extract(page_urls[:naive_pages])
        asyncio.run(queue_pages(database_url, page_urls))
        crawl_s, crawl, peak_mb, peak_alone_mb = crawl_phase(database_url, len(page_urls))
        rate = crawl["succeeded"] / crawl_s
        print(
            f"(c) crawl-queue, {len(page_urls)} pages: {crawl_s:.1f} s, {rate:.0f} pages/s "
            f"({crawl['succeeded']} stored, {crawl['failed']} failed), peak RSS worker+children {peak_mb:.0f} MB "
            f"(the worker process alone {peak_alone_mb:.0f} MB; RSS summed, shared pages counted per process) | "
            f"sequential fetch+extract_article in one process: {baseline_rate:.0f} pages/s (on {naive_pages} pages) -> "
            f"{rate / baseline_rate:.2f}x   [target >= 1.8x, <= 300 MB]"
        )
    finally:
        stop(slow_site)
        stop(fast_site)


if __name__ == "__main__":
    main()
