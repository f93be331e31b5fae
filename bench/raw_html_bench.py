"""(h) crawl-queue with MEDIABEAT_CRAWLER_KEEP_RAW_HTML off vs on, in the same run: pages/s and database size.

    .venv/bin/python bench/crawl_bench.py --raw-html [--quick]

On the real pages of the shared corpus when it is here (what size per page means), else on the
benchmark server's synthetic pages. Each setting runs twice, alternating (off, on, off, on), each
on a fresh SQLite database, in a worker process as the service runs it. The size is the SQLite
file's after the run (VACUUMed), per 1,000 stored pages, and the kept pages' bytes before and
after compression.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from crawl_bench import HOSTS, REAL_HOSTS, crawl_phase, free_port, queue_pages, start_site, stop
from mediabeat.crawler.urls import canonicalize
from mediabeat.db import migrate


def raw_html_main(*, quick: bool, corpus_arg: str | None = None) -> None:
    from real_pages import find_corpus, unpack

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared machine: figures are noisy)")
    tmp = Path(tempfile.mkdtemp(prefix="rawhtmlbench"))
    corpus = find_corpus(corpus_arg)
    try:
        if corpus is not None:
            pages_dir, _ = unpack(corpus, tmp / "corpus")
            names = sorted(f.name for f in pages_dir.glob("*.html"))
            names = names[::2] if quick else names
            port = free_port(REAL_HOSTS[0])
            site = start_site(port, feeds=0, latency_ms=0, pages=pages_dir, hosts=REAL_HOSTS)
            urls = [f"http://{REAL_HOSTS[n % len(REAL_HOSTS)]}:{port}/p/{quote(name)}" for n, name in enumerate(names)]
            kind = f"{len(urls)} real pages on {len(REAL_HOSTS)} hosts"
        else:
            pages = 400 if quick else 2000
            port = free_port(HOSTS[0])
            site = start_site(port, feeds=0, latency_ms=0)
            urls = [
                canonicalize(f"http://{HOSTS[n % len(HOSTS)]}:{port}/a/{n // 50}/{n % 50}.html") for n in range(pages)
            ]
            kind = f"{pages} synthetic pages on {len(HOSTS)} hosts (the corpus is not here)"
        try:
            measure(tmp, urls, kind)
        finally:
            stop(site)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(tmp: Path, urls: list[str], kind: str) -> None:
    rates: dict[bool, list[float]] = {False: [], True: []}
    sizes: dict[bool, float] = {}
    kept = (0, 0, 0)
    for keep in (False, True, False, True):
        path = tmp / f"bench-{time.monotonic_ns()}.db"
        url = f"sqlite:///{path}"
        migrate.upgrade(url)
        asyncio.run(queue_pages(url, urls))
        os.environ["MEDIABEAT_CRAWLER_KEEP_RAW_HTML"] = "true" if keep else "false"
        try:
            seconds, result, _ = crawl_phase(url, len(urls), shared_politeness=False)
        finally:
            del os.environ["MEDIABEAT_CRAWLER_KEEP_RAW_HTML"]
        rates[keep].append(result["succeeded"] / seconds)
        size, stored, kept_now = database_size(path)
        sizes[keep] = size / max(stored, 1) * 1000
        kept = kept_now if keep else kept
        path.unlink()
    count, raw_bytes, compressed = kept
    print(
        f"(h) crawl-queue, {kind}: raw HTML kept "
        f"{' / '.join(f'{r:.1f}' for r in rates[True])} pages/s | not kept "
        f"{' / '.join(f'{r:.1f}' for r in rates[False])} pages/s "
        f"-> best kept/not {max(rates[True]) / max(rates[False]):.2f}"
        f"   [load {os.getloadavg()[0]:.1f}]"
    )
    print(
        f"    database per 1,000 stored pages: {sizes[True] / 1e6:.1f} MB kept | {sizes[False] / 1e6:.1f} MB not kept; "
        f"{count} pages kept, {raw_bytes / max(count, 1) / 1024:.0f} KB each before compression, "
        f"{compressed / max(count, 1) / 1024:.1f} KB stored (zlib, {raw_bytes / max(compressed, 1):.1f}x)"
    )


def database_size(path: Path) -> tuple[int, int, tuple[int, int, int]]:
    """The file's bytes after VACUUM, the stored articles, and (pages kept, bytes before and after compression)."""
    with sqlite3.connect(path) as conn:
        conn.execute("VACUUM")
        articles = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
        kept = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0), coalesce(sum(length(body)), 0) FROM article_raw_pages"
        ).fetchone()
    return path.stat().st_size, int(articles), (int(kept[0]), int(kept[1]), int(kept[2]))
