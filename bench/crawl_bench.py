"""Crawler benchmark: hourly-rss-fetch on 1,000 feeds (then again, unchanged), crawl-queue on 2,000 pages.

    .venv/bin/python bench/crawl_bench.py [--quick]
    .venv/bin/python bench/crawl_bench.py --real-pages [--quick] [--corpus ../shared/corpus]
    .venv/bin/python bench/crawl_bench.py --politeness [--quick]
    .venv/bin/python bench/crawl_bench.py --raw-html [--quick]

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
  process (on a sample), with pages/s and the peaks of the worker with its children: RSS summed (shared pages
  counted per process) and PSS summed (shared pages split: what the processes really take).

With --politeness it measures (p): crawl-queue in a worker process with per-host politeness
shared through the database off vs on (SQLite; PostgreSQL too when MEDIABEAT_TEST_POSTGRES_URL
is set), and the shared layer's own cost per request.

With --real-pages it measures the 923 real pages of the shared corpus instead (see
bench/real_pages.py; it skips with a message when the corpus is absent), served from 127.0.0.2-4
behind 19 feeds: hourly-rss-fetch queues them, then
- (r0) the cost of a page crossing the pipe to an extraction worker and back (a no-op there);
- (r1) crawl-queue in a worker process vs sequential fetch + extract_article in one process,
  on the same pages, with the peak RSS and PSS;
- (r2) the extraction quality of the stored articles on the corpus snippets vs
  trafilatura.extract(html) with its default settings on the same pages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import psutil
import sqlalchemy as sa

import databases
from mediabeat.clock import SystemClock
from mediabeat.crawler.articles import extract_article
from mediabeat.crawler.language import TextLanguage
from mediabeat.crawler.urls import canonicalize, url_hash
from mediabeat.db import migrate
from mediabeat.db.engine import Database
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import JobStore, NewJob
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.stores.politeness import PolitenessStore
from mediabeat.settings import Settings
from mediabeat.tasks.base import RunContext
from mediabeat.tasks.wiring import build_crawler_handlers

HOSTS = [f"127.0.0.{i}" for i in range(2, 22)]
REAL_HOSTS = HOSTS[:3]
MB = 1024 * 1024
os.environ.setdefault("NO_PROXY", "127.0.0.0/8,localhost")


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_site(
    port: int, *, feeds: int, latency_ms: int, pages: Path | None = None, hosts: list[str] = HOSTS
) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(Path(__file__).with_name("bench_server.py"))]
    if pages is not None:
        command += ["--pages", str(pages)]
    command += [str(port), str(latency_ms), str(feeds)]
    site = subprocess.Popen(
        [*command, *hosts], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True
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


def ctx(name: str, params: dict[str, Any] | None = None) -> RunContext:
    now = datetime.now(UTC)
    return RunContext(1, name, "manual", now, now, params or {}, logging.getLogger("bench"))


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
    return naive_extract_timed(urls)[0]


def naive_extract_timed(urls: list[str]) -> tuple[float, float]:
    """Pages per second and CPU seconds per page of naive_extract, with the language identified as crawl-queue does."""
    language = TextLanguage()
    language.load()
    extract_article(b"<html><body><p>warm up</p></body></html>", "http://127.0.0.1/")
    started, cpu_started = time.perf_counter(), time.process_time()
    with httpx.Client(timeout=30) as client:
        for url in urls:
            text = str(extract_article(client.get(url).content, url).get("text") or "")
            language.identify(text)
    cpu = time.process_time() - cpu_started
    return len(urls) / (time.perf_counter() - started), cpu / len(urls)


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU seconds of `process`, its live children and the children it has reaped (replaced ones)."""
    times = process.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for each in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = each.cpu_times()
            total += times.user + times.system
    return total


async def fetch_phase(database_url: str, feed_urls: list[str]) -> tuple[float, dict[str, Any], float, dict[str, Any]]:
    db = Database(database_url)
    org = await OrgStore(db).create("bench", now=datetime.now(UTC))
    await FeedStore(db).add_many(org.id, [(u, None) for u in feed_urls], now=datetime.now(UTC))
    fetch, _ = build_crawler_handlers(settings(database_url), db, SystemClock())
    started = time.perf_counter()
    first = dict(await fetch(ctx("hourly-rss-fetch")))
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    # The same feeds again, unchanged: not due yet on their own schedules, so every one is asked for.
    second = dict(await fetch(ctx("hourly-rss-fetch", {"all": True})))
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


def worker_main(database_url: str, batch: int, *, shared_politeness: bool = False, in_process: bool = False) -> None:
    """Child process: build crawl-queue as the service does, warm the pool, wait for "go", run, report.

    With `in_process` the pages are extracted in this process (one thread, no extraction processes).
    """
    from mediabeat.crawler.articles import ExtractionPool

    async def body() -> None:
        db = Database(database_url)
        options = {"crawl_batch": batch, "crawl_concurrency": 16, "crawler_shared_politeness": shared_politeness}
        _, crawl = build_crawler_handlers(settings(database_url, **options), db, SystemClock())
        if in_process:
            crawl.pool = ExtractionPool(in_process=True)
        await crawl.pool.start()
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        me = psutil.Process()
        started, cpu_started = time.perf_counter(), cpu_seconds(me)
        result = dict(await crawl(ctx("crawl-queue")))
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(me) - cpu_started
        print(json.dumps({"seconds": elapsed, "cpu": cpu, "result": result}), flush=True)
        await crawl.aclose()
        await db.dispose()

    asyncio.run(body())


@dataclass
class MemoryPeaks:
    """Peaks over a run of the worker process and its children (the extraction processes, a fork server).

    `rss` sums each process's resident set, so a page two processes share is counted twice;
    `pss` splits each shared page between the processes that map it: what the tree really takes.
    """

    rss: float = 0.0
    pss: float = 0.0
    alone: float = 0.0
    largest_child: float = 0.0
    ready: float = 0.0  # the worker alone once warm, before the first page (imports, models)
    children: int = 0  # the most children seen at once

    def sample(self, worker: psutil.Process) -> None:
        """Add one sample of `worker` and its live children (MB)."""
        rss = pss = 0.0
        try:
            children = worker.children(recursive=True)
        except psutil.Error:  # the worker has ended
            return
        self.children = max(self.children, len(children))
        for each in [worker, *children]:
            with contextlib.suppress(psutil.Error):
                info = each.memory_full_info()
                rss, pss = rss + info.rss / MB, pss + info.pss / MB
                if each.pid == worker.pid:
                    self.alone = max(self.alone, info.rss / MB)
                else:
                    self.largest_child = max(self.largest_child, info.rss / MB)
        self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)

    def __str__(self) -> str:
        return (
            f"peak RSS worker+children {self.rss:.0f} MB, PSS {self.pss:.0f} MB (the worker alone {self.alone:.0f} MB "
            f"RSS, {self.ready:.0f} MB before the first page; the largest child {self.largest_child:.0f} MB RSS; "
            f"summed RSS counts shared pages once per process)"
        )


def crawl_phase(
    database_url: str, batch: int, *, shared_politeness: bool = False, in_process: bool = False
) -> tuple[float, dict[str, Any], MemoryPeaks]:
    """One crawl-queue worker process over the queued pages; shared politeness off, SQLite's default.

    With `in_process`, no extraction processes: the worker extracts the pages itself, one at a time.
    """
    politeness = "on" if shared_politeness else "off"
    command = [sys.executable, __file__, "--worker", database_url, "--batch", str(batch)]
    command += ["--shared-politeness", politeness, *(["--in-process"] if in_process else [])]
    worker = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdin is not None and worker.stdout is not None
    peaks = MemoryPeaks()
    done = threading.Event()

    def sample() -> None:
        proc = psutil.Process(worker.pid)
        while not done.is_set():
            peaks.sample(proc)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert worker.stdout.readline().strip() == "ready"
    with contextlib.suppress(psutil.Error):
        peaks.ready = psutil.Process(worker.pid).memory_info().rss / MB
    worker.stdin.write("go\n")
    worker.stdin.flush()
    report = json.loads(worker.stdout.readline())
    worker.wait(timeout=60)
    done.set()
    sampler.join()
    report["result"]["cpu_seconds"] = report["cpu"]
    return float(report["seconds"]), report["result"], peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer feeds and pages (about a minute)")
    parser.add_argument("--real-pages", action="store_true", help="measure on the real pages of the shared corpus")
    parser.add_argument("--corpus", help="the corpus folder (default: ../shared/corpus beside the project)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=2000, help=argparse.SUPPRESS)
    parser.add_argument("--shared-politeness", choices=("on", "off"), default="off", help=argparse.SUPPRESS)
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--politeness",
        action="store_true",
        help="crawl-queue with per-host politeness shared through the database on vs off "
        "(SQLite; PostgreSQL too when MEDIABEAT_TEST_POSTGRES_URL is set)",
    )
    parser.add_argument(
        "--raw-html", action="store_true", help="crawl-queue with raw HTML kept vs not (bench/raw_html_bench.py)"
    )
    args = parser.parse_args()
    if args.raw_html:
        from raw_html_bench import raw_html_main

        raw_html_main(quick=args.quick, corpus_arg=args.corpus)
        return
    if args.worker:
        politeness = args.shared_politeness == "on"
        worker_main(args.worker, args.batch, shared_politeness=politeness, in_process=args.in_process)
        return
    if args.politeness:
        politeness_main(quick=args.quick)
        return
    if args.real_pages:
        real_pages_main(args.corpus, quick=args.quick)
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
        crawl_s, crawl, peaks = crawl_phase(database_url, len(page_urls))
        rate = crawl["succeeded"] / crawl_s
        print(
            f"(c) crawl-queue, {len(page_urls)} pages: {crawl_s:.1f} s, {rate:.0f} pages/s "
            f"({crawl['succeeded']} stored, {crawl['failed']} failed), {peaks} | "
            f"sequential fetch+extract_article in one process: {baseline_rate:.0f} pages/s (on {naive_pages} pages) -> "
            f"{rate / baseline_rate:.2f}x   [target >= 1.8x, <= 300 MB]"
        )
    finally:
        stop(slow_site)
        stop(fast_site)


def pipe_cost(pages: list[bytes]) -> float:
    """Seconds per page for the page to cross to an extraction worker and back, the worker doing nothing."""
    from mediabeat.crawler.articles import ExtractionPool

    async def body() -> float:
        pool = ExtractionPool()
        await pool.start()
        started = time.perf_counter()
        # The process measures the page's length instead of extracting: the bytes are pickled, piped, unpickled.
        await asyncio.gather(*(pool.round_trip(page) for page in pages))
        elapsed = time.perf_counter() - started
        pool.shutdown()
        return elapsed / len(pages)

    return asyncio.run(body())


def stored_texts(database_url: str) -> dict[str, str | None]:
    """The text of every stored article, by the corpus file it came from."""
    from mediabeat.db.tables import articles

    async def body() -> dict[str, str | None]:
        db = Database(database_url)
        async with db.read() as conn:
            rows = (await conn.execute(sa.select(articles.c.url, articles.c.text))).all()
        await db.dispose()
        return {unquote(url.rsplit("/", 1)[-1]): text for url, text in rows}

    return asyncio.run(body())


def real_pages_main(corpus_arg: str | None, *, quick: bool) -> None:
    import shutil

    from real_pages import find_corpus, unpack

    corpus = find_corpus(corpus_arg)
    if corpus is None:
        print("skipped: the real-page corpus (../shared/corpus beside the project) is not on this machine")
        return
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared machine: figures are noisy)")
    tmp = Path(tempfile.mkdtemp(prefix="crawlbench-real"))
    try:
        pages_dir, snippets = unpack(corpus, tmp / "corpus")
        names = sorted(f.name for f in pages_dir.glob("*.html"))
        feeds = -(-len(names) // 50)
        database_url = f"sqlite:///{tmp / 'bench.db'}"
        migrate.upgrade(database_url)
        port = free_port(REAL_HOSTS[0])
        site = start_site(port, feeds=0, latency_ms=0, pages=pages_dir, hosts=REAL_HOSTS)
        try:
            run_real_pages(database_url, port, names, feeds, pages_dir, snippets, quick=quick)
        finally:
            stop(site)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class CrawlRun:
    """One crawl_phase: wall time, the run's result and the memory peaks."""

    seconds: float
    result: dict[str, Any]
    peaks: MemoryPeaks
    pages: int

    @property
    def rate(self) -> float:
        return float(self.result["succeeded"]) / self.seconds

    @property
    def cpu(self) -> float:
        """CPU seconds per page, the worker and its extraction processes together."""
        return float(self.result["cpu_seconds"]) / self.pages

    def line(self) -> str:
        r = self.result
        return (
            f"{self.seconds:.1f} s, {self.rate:.1f} pages/s ({r['succeeded']} stored, {r['failed']} failed, "
            f"errors {r['errors']}), {self.cpu * 1000:.0f} ms CPU/page, {self.peaks}"
        )


def copy_sqlite(database_url: str, suffix: str) -> str:
    """A copy of a SQLite database (the backup API: consistent), beside it; its URL."""
    import sqlite3

    source = database_url.removeprefix("sqlite:///")
    target = f"{source}.{suffix}"
    with contextlib.closing(sqlite3.connect(source)) as src, contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    return f"sqlite:///{target}"


def run_real_pages(
    database_url: str,
    port: int,
    names: list[str],
    feeds: int,
    pages_dir: Path,
    snippets: dict[str, dict[str, object]],
    *,
    quick: bool,
) -> None:
    total_mb = sum((pages_dir / n).stat().st_size for n in names) / 1024 / 1024
    feed_urls = [f"http://{REAL_HOSTS[k % len(REAL_HOSTS)]}:{port}/real/{k}.rss" for k in range(feeds)]
    _, fetched, _, _ = asyncio.run(fetch_phase(database_url, feed_urls))
    single_url = copy_sqlite(database_url, "one-process")  # the same queue for the one-process crawl-queue
    per_page = pipe_cost([(pages_dir / n).read_bytes() for n in names])
    print(
        f"(r0) a page across the pipe to an extraction worker and back (no extraction), {len(names)} pages, "
        f"{total_mb:.0f} MB: {per_page * 1000:.2f} ms/page   [load {os.getloadavg()[0]:.1f}]",
        flush=True,
    )
    page_urls = [
        f"http://{REAL_HOSTS[(n // 50) % len(REAL_HOSTS)]}:{port}/p/{quote(name)}" for n, name in enumerate(names)
    ]
    sample = page_urls[::4] if quick else page_urls
    baseline_rate, baseline_cpu = naive_extract_timed(sample)
    print(
        f"(r1) one process, sequential fetch + extract_article + language, nothing stored: {baseline_rate:.1f} "
        f"pages/s on {len(sample)} pages, {baseline_cpu * 1000:.0f} ms CPU/page   [load {os.getloadavg()[0]:.1f}]",
        flush=True,
    )
    single = CrawlRun(*crawl_phase(single_url, len(page_urls), in_process=True), pages=len(page_urls))
    print(
        f"     crawl-queue in one process (extraction in the worker, no extraction processes; stored, indexed, "
        f"sketched as below): {single.line()}   [load {os.getloadavg()[0]:.1f}]",
        flush=True,
    )
    crawl = CrawlRun(*crawl_phase(database_url, len(page_urls)), pages=len(page_urls))
    print(
        f"     crawl-queue, {fetched['jobs_created']} real pages queued by hourly-rss-fetch, {len(REAL_HOSTS)} hosts, "
        f"{crawl.peaks.children} extraction processes: {crawl.line()}   [load {os.getloadavg()[0]:.1f}]",
        flush=True,
    )
    print(
        f"     -> {crawl.rate / baseline_rate:.2f}x one process storing nothing, {crawl.rate / single.rate:.2f}x "
        f"crawl-queue in one process   [target >= 1.8x, <= 300 MB summed RSS]\n"
        f"     on two idle cores the CPU per page would allow at most {2 * baseline_cpu / crawl.cpu:.2f}x and "
        f"{2 * single.cpu / crawl.cpu:.2f}x (2 x the baseline's CPU/page / crawl-queue's)",
        flush=True,
    )
    real_pages_quality(database_url, pages_dir, snippets)


def real_pages_quality(database_url: str, pages_dir: Path, snippets: dict[str, dict[str, object]]) -> None:
    """(r2) the stored articles' snippet scores beside trafilatura's defaults on the same pages."""
    from real_pages import extract_all, score, trafilatura_default

    ours = score(stored_texts(database_url), snippets)
    default = score(extract_all(pages_dir, snippets, trafilatura_default), snippets)
    print(f"(r2) quality on {ours.pages} pages' snippets, stored articles: {ours}")
    print(f"     trafilatura.extract(html), default settings, same pages: {default}")
    print(
        f"     recall {ours.recall - default.recall:+.3f}, precision {ours.precision - default.precision:+.3f} "
        f"against the default   [target: recall >= default at precision >= default]"
    )


@contextlib.contextmanager
def fresh_database(backend: str, tmp: Path) -> Iterator[str]:
    """A new, migrated database: a SQLite file in `tmp`, or a PostgreSQL database dropped afterwards."""
    admin_url = os.environ["MEDIABEAT_TEST_POSTGRES_URL"] if backend != "sqlite" else None
    with databases.fresh_database(admin_url, tmp / f"politeness-{time.monotonic_ns()}.db") as url:
        yield url


async def shared_round_trip(database_url: str, requests: int) -> float:
    """Milliseconds per request of the shared layer alone: take a slot and a start, give the slot back."""
    db = Database(database_url)
    store = PolitenessStore(db)
    started = time.perf_counter()
    for n in range(requests):
        host = HOSTS[n % len(HOSTS)]
        await store.acquire(host, holder="bench", limit=8, spacing=0.0, crawl_delay=None, lease=40.0)
        await store.release(host, holder="bench")
    elapsed = time.perf_counter() - started
    await db.dispose()
    return elapsed / requests * 1000


def politeness_main(*, quick: bool) -> None:
    """(p) crawl-queue, one worker process, pages over 20 loopback hosts: shared politeness off vs on, twice each."""
    pages = 400 if quick else 2000
    backends = ["sqlite"] + (["postgresql"] if os.environ.get("MEDIABEAT_TEST_POSTGRES_URL") else [])
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared machine: figures are noisy)")
    tmp = Path(tempfile.mkdtemp(prefix="politebench"))
    port = free_port(HOSTS[0])
    site = start_site(port, feeds=0, latency_ms=0)
    page_urls = [canonicalize(f"http://{HOSTS[n % len(HOSTS)]}:{port}/a/{n // 50}/{n % 50}.html") for n in range(pages)]
    try:
        for backend in backends:
            rates: dict[bool, list[float]] = {False: [], True: []}
            for shared in (False, True, False, True):
                with fresh_database(backend, tmp) as url:
                    asyncio.run(queue_pages(url, page_urls))
                    seconds, result, _ = crawl_phase(url, len(page_urls), shared_politeness=shared)
                    rates[shared].append(result["succeeded"] / seconds)
            with fresh_database(backend, tmp) as url:
                per_request_ms = asyncio.run(shared_round_trip(url, 200 if quick else 1000))
            off, on = (max(rates[flag]) for flag in (False, True))
            print(
                f"(p) {backend}, crawl-queue, {pages} pages on 20 hosts: shared politeness on "
                f"{' / '.join(f'{r:.0f}' for r in rates[True])} pages/s | off "
                f"{' / '.join(f'{r:.0f}' for r in rates[False])} pages/s -> best on/off {on / off:.2f}; "
                f"the shared layer alone: {per_request_ms:.2f} ms per request (slot + start + release)"
            )
    finally:
        stop(site)


if __name__ == "__main__":
    main()
