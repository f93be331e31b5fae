"""Monitor matching: 10,000 monitors in one organisation, new articles arriving, beside two baselines.

    .venv/bin/python bench/monitor_bench.py [--monitors 10000] [--articles 2000] [--postgres URL]

Articles are real text, cut from the shared corpus's pages the way bench/search_bench.py cuts
them (real word frequencies and phrases). Monitors are the queries an analyst saves, parsed by
the search language: 35 % single words, 25 % "OR" lists of 2-5 words, 20 % two-word phrases
that occur in the text, 12 % "a AND (b OR c) -d", 8 % NEAR/5 pairs. Words come 95 % from the
corpus's rarer band (frequency rank 5,000 to 60,000: names, places, topics, what people
monitor) and 5 % from ranks 500-5,000; each phrase or NEAR pair has at least one rare word.
The match rate this gives is printed.

Figures, each measured in the same run on the same freshly migrated database:

- matcher, end to end: articles stored in batches of 50 (ArticleStore.save_many, as crawl-queue
  writes them), then `MonitorMatcher.on_stored`, the hook crawl-queue calls: the prefilter,
  evaluation, recording matches and the watermark. Articles per second, with the compile of the
  10,000 monitors that the first batch's hook does, and without it (a worker that runs for
  hours compiles once, then again only the queries that change).
- matcher, CPU only: the same articles through the compiled monitors (no database), in one
  process and in two (two crawl workers on 2 cores, each matching its own batches).
- baseline 1: each monitor's query run against the full-text index once per article (SQLite:
  `articles_search MATCH ? AND rowid = ?`; PostgreSQL: `search_vector @@ tsquery` on the
  article's row), 10,000 statements per article, on a sample.
- baseline 2: each monitor's compiled query evaluated in Python on every article, without the
  prefilter, on a sample.
- webhook latency: 20 of the monitors have a webhook to a loopback receiver (cool-down 0); the
  articles arrive at --rate articles/s and each message's latency is the time from the store of
  the oldest article it lists to its arrival at the receiver. p50 / p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from databases import fresh_database
from mediabeat.clock import SystemClock
from mediabeat.crawler.http import ClientConfig, SafeClient
from mediabeat.crawler.urls import url_hash
from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore, NewArticle
from mediabeat.db.stores.monitors import ActiveMonitor, MonitorStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.domain.monitors import BadMonitorQuery, MonitorMatchDoc
from mediabeat.monitors.engine import build_monitor_engine
from mediabeat.monitors.matcher import OrgMonitors
from mediabeat.monitors.query import compile_query, document
from mediabeat.search.tokens import tokenize
from real_pages import find_corpus
from search_bench import articles as corpus_articles
from search_bench import corpus_words

BATCH = 50
WEBHOOKS = 20


def monitor_queries(words: list[str], n: int, seed: int) -> list[str]:
    """`n` saved queries that parse: rare words, OR lists, phrases, AND/NOT and NEAR, as analysts write them."""
    rng = random.Random(seed)
    counts = Counter(t for w in words for t in tokenize(w))
    ranked = [w for w, _ in counts.most_common() if len(w) >= 4 and w.isalpha()]
    mid, rare = ranked[500:5_000], ranked[5_000:60_000]
    rare_set = frozenset(rare)

    def word() -> str:
        return rng.choice(mid if rng.random() < 0.05 else rare)

    def run(length: int) -> list[str]:
        """Words that follow each other in the text, one of them rare: a name, a place, a product."""
        while True:
            i = rng.randrange(len(words) - length)
            piece = words[i : i + length]
            if all(p.isalpha() and len(p) > 3 for p in piece) and any(p.lower() in rare_set for p in piece):
                return piece

    makers = [
        (0.35, lambda: word()),
        (0.25, lambda: " OR ".join(word() for _ in range(rng.randint(2, 5)))),
        (0.2, lambda: '"' + " ".join(run(2)) + '"'),
        (0.12, lambda: f"{word()} AND ({word()} OR {word()}) -{word()}"),
        (0.08, lambda: (lambda p: f"{p[0]} NEAR/5 {p[-1]}")(run(rng.randint(2, 5)))),
    ]
    out: list[str] = []
    while len(out) < n:
        roll, pick = rng.random(), makers[-1][1]
        for share, maker in makers:
            if roll < share:
                pick = maker
                break
            roll -= share
        query = pick()
        try:
            compile_query(query)
        except BadMonitorQuery:
            continue
        out.append(query)
    return out


class Receiver:
    """A loopback webhook receiver that notes when each message arrives, and the article ids it lists."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, list[int]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ids = [m["article_id"] for m in json.loads(body).get("matches", [])]
                owner.arrivals.append((time.time(), ids))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def new_article(org_id: int, i: int, a: Any, offset: int) -> NewArticle:
    url = f"{a.url}-{offset}"
    return NewArticle(
        org_id=org_id,
        feed_id=None,
        url=url,
        url_hash=url_hash(url),
        canonical_url=url,
        title=a.title,
        author=None,
        published_at=a.published_at,
        summary=None,
        text=a.text,
        language="en",
    )


async def seed_monitors(db: Database, org_id: int, queries: list[str], hook: str) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "org_id": org_id,
            "name": f"m{i}",
            "query": q,
            "feed_token_hash": f"bench-{i}",
            "created_by": "bench",
            "webhook_url": hook if i < WEBHOOKS else None,
            "webhook_secret": "bench" if i < WEBHOOKS else None,
            "cooldown_s": 0,
            "start_after_article_id": 0,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for i, q in enumerate(queries)
    ]
    from mediabeat.db.tables import monitors

    async with db.write() as conn:
        await conn.execute(sa.insert(monitors), rows)


async def end_to_end(db: Database, org_id: int, sample: list[Any], rate: float, receiver: Receiver) -> dict[str, Any]:
    config = ClientConfig(user_agent="monitor-bench", allow_loopback=True)
    engine = build_monitor_engine(
        db, SystemClock(), client_factory=lambda: SafeClient(config), mail=None, public_url=None
    )
    store = ArticleStore(db)
    stored_at: dict[int, float] = {}
    t0 = time.perf_counter()
    await engine.matcher.compiled(org_id)  # what the first batch's hook does first, timed on its own
    first_compile_s = time.perf_counter() - t0
    matcher_s = matcher_cpu_s = 0.0
    started = time.perf_counter()
    for start in range(0, len(sample), BATCH):
        batch = [new_article(org_id, start + k, a, 0) for k, a in enumerate(sample[start : start + BATCH])]
        if rate:  # arrivals paced at `rate` articles per second
            await asyncio.sleep(max(0.0, started + start / rate - time.perf_counter()))
        ids = await store.save_many(batch, now=datetime.now(UTC))
        now = time.time()
        stored_at.update((i, now) for i in ids)
        t0, c0 = time.perf_counter(), time.process_time()
        await engine.matcher.on_stored(list(zip(ids, batch, strict=True)))
        matcher_s += time.perf_counter() - t0
        matcher_cpu_s += time.process_time() - c0  # this process's CPU (and SQLite's thread): not the load
    await engine.drain()
    await asyncio.sleep(0.5)
    latencies = [arrived - min(stored_at[i] for i in ids) for arrived, ids in receiver.arrivals if ids]
    return {
        "articles": len(sample),
        "matcher_s": matcher_s,
        "matcher_cpu_s": matcher_cpu_s,
        "first_compile_s": first_compile_s,
        "latencies": latencies,
    }


def cpu_only(org: OrgMonitors, docs: list[MonitorMatchDoc]) -> tuple[float, int]:
    t0 = time.perf_counter()
    matches = 0
    for doc in docs:
        matches += len(org.match(doc.id, document(doc)))
    return time.perf_counter() - t0, matches


_WORKER_ORG: OrgMonitors | None = None


def _start_worker(queries: list[str]) -> None:
    global _WORKER_ORG
    _WORKER_ORG = OrgMonitors.compile((0, 0, 0), [ActiveMonitor(i, q, 0) for i, q in enumerate(queries)])


def _match_chunk(docs: list[MonitorMatchDoc]) -> int:
    assert _WORKER_ORG is not None
    return sum(len(_WORKER_ORG.match(doc.id, document(doc))) for doc in docs)


def cpu_two_processes(queries: list[str], docs: list[MonitorMatchDoc]) -> float:
    """Seconds to match `docs` in two processes (two crawl workers, each matching its own batches)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2, initializer=_start_worker, initargs=(queries,)) as pool:
        list(pool.map(_match_chunk, [docs[:2], docs[2:4]]))  # both compiled and warm
        t0 = time.perf_counter()
        list(pool.map(_match_chunk, [docs[i : i + BATCH] for i in range(0, len(docs), BATCH)]))
        return time.perf_counter() - t0


def naive(queries: list[str], docs: list[MonitorMatchDoc]) -> float:
    compiled = [compile_query(q) for q in queries]
    t0 = time.perf_counter()
    for doc in docs:
        prepared = document(doc)
        for query in compiled:
            query.matches(prepared)
    return (time.perf_counter() - t0) / len(docs)


async def index_baseline(db: Database, queries: list[str], article_ids: list[int]) -> float:
    """Seconds per article when each monitor's query runs against the full-text index for that article.

    SQLite: `articles_search MATCH ? AND rowid = ?` (FTS5); PostgreSQL: `search_vector @@ tsquery`
    on the article's row (the GIN-indexed tsvector), each query compiled by the search language.
    """
    from mediabeat.search.query import parse_query
    from mediabeat.search.sql import to_fts5, to_tsquery

    texts = [parse_query(q).text for q in queries]
    statements: list[tuple[Any, dict[str, Any]]] = []
    for text in texts:
        assert text is not None
        if db.is_sqlite:
            sql = "SELECT 1 FROM articles_search WHERE articles_search MATCH :m AND rowid = :id"
            statements.append((sa.text(sql), {"m": to_fts5(text)}))
        else:
            ts = to_tsquery(text)
            sql = f"SELECT 1 FROM articles WHERE id = :id AND search_vector @@ {ts.sql}"
            statements.append((sa.text(sql), dict(ts.params)))
    t0 = time.perf_counter()
    async with db.read() as conn:
        for article_id in article_ids:
            for statement, params in statements:
                await conn.execute(statement, {**params, "id": article_id})
    return (time.perf_counter() - t0) / len(article_ids)


def docs_of(org_id: int, sample: list[Any]) -> list[MonitorMatchDoc]:
    return [
        MonitorMatchDoc(
            id=10**9 + i,
            org_id=org_id,
            feed_id=None,
            url=a.url,
            title=a.title,
            summary=None,
            text=a.text,
            language="en",
            published_at=a.published_at,
        )
        for i, a in enumerate(sample)
    ]


async def main(args: argparse.Namespace) -> None:
    corpus = find_corpus(args.corpus)
    if corpus is None:
        raise SystemExit("the shared corpus is not on this machine: give its folder with --corpus")
    words = corpus_words(corpus)
    queries = monitor_queries(words, args.monitors, seed=7)
    sample = list(corpus_articles(words, args.articles, seed=11))
    print("load average at the start (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    with (
        tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp,
        fresh_database(args.postgres, Path(tmp) / "bench.db") as url,
    ):
        db = Database(url)
        try:
            org = await OrgStore(db).create(f"bench-{os.getpid()}", now=datetime.now(UTC))
            receiver = Receiver()
            await seed_monitors(db, org.id, queries, receiver.url)
            t0 = time.perf_counter()
            compiled = OrgMonitors.compile((0, 0, 0), await MonitorStore(db).active_for_org(org.id))
            compile_s = time.perf_counter() - t0
            docs = docs_of(org.id, sample)
            cpu_s, cpu_matches = cpu_only(compiled, docs)
            cpu2_s = cpu_two_processes(queries, docs)
            e2e = await end_to_end(db, org.id, sample, args.rate, receiver)
            async with db.read() as conn:
                query = sa.text("SELECT id FROM articles ORDER BY id LIMIT :n")
                ids = [i for (i,) in await conn.execute(query, {"n": args.index_sample})]
            per_index = await index_baseline(db, queries, ids)
            per_naive = naive(queries, docs[: args.naive_sample])
        finally:
            await db.dispose()
    report(args, (compile_s, cpu_s, cpu2_s), cpu_matches, e2e, per_index, per_naive, url)


def report(
    args: argparse.Namespace,
    times: tuple[float, float, float],
    cpu_matches: int,
    e2e: dict[str, Any],
    per_index: float,
    per_naive: float,
    url: str,
) -> None:
    compile_s, cpu_s, cpu2_s = times
    n = e2e["articles"]
    lat = sorted(e2e["latencies"])
    quantile = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]) if lat else (lambda q: float("nan"))
    print(f"database: {url.split(':', 1)[0]}  monitors: {args.monitors}  articles: {n}  cores: {os.cpu_count()}")
    print("load average at the end (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    print(f"compile 10k monitors: {compile_s:.2f} s; matches per article: {cpu_matches / n:.1f}")
    with_compile = e2e["matcher_s"] + e2e["first_compile_s"]
    print(
        f"matcher, end to end (hook: read, match, record): {n / with_compile:.0f} articles/s (with the first compile)"
    )
    print(f"matcher, end to end, monitors compiled already:  {n / e2e['matcher_s']:.0f} articles/s")
    print(
        f"matcher, end to end, per CPU second of the process: {n / e2e['matcher_cpu_s']:.0f} articles"
        " (SQLite: its work is in the process; steadier than the wall clock on a loaded machine)"
    )
    print(f"matcher, CPU only (prefilter + evaluation):      {n / cpu_s:.0f} articles/s")
    print(f"matcher, CPU only, two processes:               {n / cpu2_s:.0f} articles/s")
    index = "FTS5 index" if url.startswith("sqlite") else "tsvector (GIN)"
    print(
        f"baseline, every query against the {index}: {1 / per_index:.2f} articles/s"
        f" ({args.index_sample} articles sampled)"
    )
    print(
        f"baseline, every query evaluated in Python:      {1 / per_naive:.1f} articles/s"
        f" ({args.naive_sample} articles sampled)"
    )
    print(
        f"webhook latency at {args.rate:g} articles/s, {len(lat)} messages: "
        f"p50 {quantile(0.5) * 1000:.0f} ms, p99 {quantile(0.99) * 1000:.0f} ms,"
        f" max {max(lat, default=0) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--articles", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=200.0, help="arrival rate for the latency run (0: flat out)")
    parser.add_argument("--index-sample", type=int, default=3)
    parser.add_argument("--naive-sample", type=int, default=20)
    parser.add_argument("--corpus", help="the shared corpus folder (default: ../shared/corpus)")
    parser.add_argument(
        "--postgres",
        help="a PostgreSQL URL: a scratch database is created through it and dropped afterwards (default: SQLite)",
    )
    asyncio.run(main(parser.parse_args()))
