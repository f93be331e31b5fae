"""Full-text search latency: word, phrase, Boolean and NEAR queries through SearchStore, beside a LIKE scan.

    .venv/bin/python bench/search_bench.py --articles 100000 [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

The articles are built from real text: the shared corpus (`../shared/corpus/`, 923 real web pages
in many languages, never copied into the project) is unpacked into a temporary folder, its pages'
visible text becomes one stream of words, and each article is a title and a body of 150-450
consecutive words cut from a random place in that stream, so the word frequencies and the
phrases are those of real pages. The queries are drawn from the same stream: words of every
frequency band, phrases and NEAR pairs that occur, Boolean combinations.

Each query runs through `SearchStore.search` (ranked, 20 hits with their snippets: what the CLI,
the API and the dashboard run); the baseline is the search we had before, a
`title LIKE '%…%' OR text LIKE '%…%'` scan for the same words, newest first, 20 rows, measured in
the same run on the same database. The database is one organisation's, freshly migrated.

The articles are written in bulk (see load_sqlite and load_postgres): the same schema, triggers
and indexes as a migrated production database, built once after the rows instead of row by row.
`--sqlite-file` and `--postgres-database` keep the loaded databases for the next run, which
reuses them; `--load-only` stops after loading; `--only` picks one database; `--previous [COMMIT]` runs
each query through the previous plan too (the SearchStore of that commit, loaded from git), in the same run;
`--baseline-database NAME` (PostgreSQL) runs each query on that database of the same server too,
as the previous columns: the same articles under the previous schema, for a change of storage
(made with CREATE DATABASE ... TEMPLATE, then the old setting and VACUUM FULL);
`--warm` runs every query once through every plan before measuring (a server that has been answering
queries: without it, the first run of each query reads its candidates' rows from the OS).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mediabeat import heap
from mediabeat.db import migrate
from mediabeat.db.engine import Database, sync_url
from mediabeat.db.stores.search import RECENT_IDS, SearchStore, band_definition
from mediabeat.search.query import parse_query
from mediabeat.search.tokens import tokenize
from real_pages import find_corpus, unpack

WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
BATCH = 2_000
CATEGORIES = ("word", "phrase", "boolean", "near")


def corpus_words(corpus: Path) -> list[str]:
    """Every visible word of the corpus's pages, in page order (scripts and styles left out)."""
    import lxml.html

    with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
        pages, _ = unpack(corpus, Path(tmp))
        words: list[str] = []
        for page in sorted(pages.glob("*.html")):
            try:
                tree = lxml.html.fromstring(page.read_bytes())
            except (ValueError, lxml.etree.ParserError):
                continue
            for bad in tree.xpath("//script|//style|//noscript"):
                bad.drop_tree()
            words.extend(WORD.findall(tree.text_content()))
    return words


@dataclass(frozen=True)
class Article:
    title: str
    text: str
    url: str
    published_at: datetime


def articles(words: list[str], n: int, seed: int) -> Iterator[Article]:
    """`n` articles cut from the word stream at random places (the same seed gives the same articles)."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    hosts = [f"news{i}.example.org" for i in range(50)]
    last = len(words) - 500
    for i in range(n):
        t = rng.randrange(last)
        b = rng.randrange(last)
        yield Article(
            title=" ".join(words[t : t + rng.randint(5, 12)]),
            text=" ".join(words[b : b + rng.randint(150, 450)]),
            url=f"https://{hosts[i % len(hosts)]}/story/{i}",
            published_at=start + timedelta(minutes=i),
        )


def queries(words: list[str], seed: int, per_category: int) -> dict[str, list[str]]:
    """Queries that occur in the text: words from every frequency band, phrases, Boolean mixes, NEAR pairs."""
    rng = random.Random(seed + 1)
    counts = Counter(t for w in words for t in tokenize(w))
    ranked = [w for w, _ in counts.most_common() if len(w) >= 4 and w.isalpha()]
    bands = [ranked[:200], ranked[200:2_000], ranked[2_000:20_000]]

    def word() -> str:
        return rng.choice(bands[rng.randrange(3)])

    def run(length: int) -> list[str]:
        while True:
            i = rng.randrange(len(words) - length)
            piece = words[i : i + length]
            if all(p.isalpha() and len(p) > 2 for p in piece):
                return piece

    out: dict[str, list[str]] = {c: [] for c in CATEGORIES}
    for _ in range(per_category):
        out["word"].append(word())
        out["phrase"].append('"' + " ".join(run(rng.choice((2, 3)))) + '"')
        out["boolean"].append(f"({word()} OR {word()}) {word()} -{word()}")
        pair = run(rng.randint(2, 6))
        out["near"].append(f"{pair[0]} NEAR/5 {pair[-1]}")
    return out


def like_condition(query: str) -> tuple[str, dict[str, str]]:
    """The LIKE scan for a query: each word or phrase as `title LIKE %x% OR text LIKE %x%` (NEAR as AND)."""
    params: dict[str, str] = {}

    def like(text: str) -> str:
        name = f"p{len(params)}"
        params[name] = f"%{text}%"
        return f"(title LIKE :{name} OR text LIKE :{name})"

    if query.startswith('"'):
        return like(query.strip('"')), params
    if " NEAR/" in query:
        a, b = query.split(" NEAR/5 ")
        return f"{like(a)} AND {like(b)}", params
    if query.startswith("("):
        m = re.fullmatch(r"\((\S+) OR (\S+)\) (\S+) -(\S+)", query)
        assert m
        return f"({like(m[1])} OR {like(m[2])}) AND {like(m[3])} AND NOT {like(m[4])}", params
    return like(query), params


def rows(words: list[str], n: int, seed: int, postgres: bool) -> Iterator[tuple[object, ...]]:
    """The articles as rows of (org_id, url, url_hash, title, text, language, published_at, fetched_at, created_at)."""
    for article in articles(words, n, seed):
        published = article.published_at if postgres else article.published_at.replace(tzinfo=None).isoformat(" ")
        url_hash = hashlib.sha256(article.url.encode()).hexdigest()
        yield (1, article.url, url_hash, article.title, article.text, "en", published, published, published)


COLUMNS = "org_id, url, url_hash, title, text, language, published_at, fetched_at, created_at"


def stored_articles(url: str) -> int:
    """How many articles a database at `url` already holds (0 when it does not exist or is not migrated)."""
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM articles")).scalar_one())
    except sa.exc.SQLAlchemyError:
        return 0
    finally:
        engine.dispose()


def load(url: str, words: list[str], n: int, seed: int) -> float:
    """Migrate a fresh database at `url` and write `n` articles in bulk (see load_sqlite, load_postgres); seconds."""
    migrate.upgrade(url)
    engine = sa.create_engine(sync_url(url))
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO organizations (name, created_at) VALUES ('bench', CURRENT_TIMESTAMP)"))
    engine.dispose()
    begun = time.perf_counter()
    source = rows(words, n, seed, postgres)
    if postgres:
        load_postgres(url, source, n, begun)
    else:
        load_sqlite(url.removeprefix("sqlite:///"), source, n, begun)
        # What the nightly cleanup does: the words held by half of the articles, which ranking leaves out.
        weightless = asyncio.run(count_weightless_words(url))
        print(f"  {weightless} words held by half of the articles counted ({time.perf_counter() - begun:.0f} s)")
    return time.perf_counter() - begun


async def count_weightless_words(url: str) -> int:
    db = Database(url)
    try:
        return await SearchStore(db).count_weightless_words()
    finally:
        await db.dispose()


def progress(done: int, begun: float) -> None:
    if done % 100_000 == 0:
        print(f"  {done:,} articles written ({time.perf_counter() - begun:.0f} s)", flush=True)


def load_sqlite(path: str, source: Iterator[tuple[object, ...]], n: int, begun: float) -> None:
    """SQLite bulk load: the FTS5 insert triggers are set aside, the rows go in with executemany (no journal
    while loading), then the index is rebuilt once from the articles ('rebuild', as migration 0011 does for
    existing articles), the newest articles are indexed in the second index as migration 0031 does, the
    triggers are put back from their own stored SQL, and the segments are merged ('optimize'). The
    schema, triggers and indexes afterwards are exactly the migrated ones."""
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")
    names = ("articles_search_insert", "articles_search_recent_insert")
    triggers = [conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0] for name in names]
    for name in names:
        conn.execute(f"DROP TRIGGER {name}")
    insert = f"INSERT INTO articles ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    done = 0
    while done < n:
        batch = [next(source) for _ in range(min(BATCH * 10, n - done))]
        conn.execute("BEGIN")
        conn.executemany(insert, batch)
        conn.execute("COMMIT")
        for i in range(len(batch)):
            progress(done + i + 1, begun)
        done += len(batch)
    print(f"  rows written ({time.perf_counter() - begun:.0f} s); building the FTS5 index", flush=True)
    conn.execute("INSERT INTO articles_search(articles_search) VALUES ('rebuild')")
    recent_ids = importlib.import_module("mediabeat.db.migrations.versions.0031_search_recent").RECENT_IDS
    conn.execute(f"UPDATE articles_search_recent_floor SET id = (SELECT max(id) FROM articles) - {recent_ids - 1}")
    conn.execute(
        "INSERT INTO articles_search_recent(rowid, title, text) SELECT id, title, text FROM articles "
        "WHERE id >= (SELECT id FROM articles_search_recent_floor)"
    )
    for trigger in triggers:
        conn.execute(trigger)
    for index in ("articles_search", "articles_search_recent"):
        conn.execute(f"INSERT INTO {index}({index}) VALUES ('optimize')")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()


def load_postgres(url: str, source: Iterator[tuple[object, ...]], n: int, begun: float) -> None:
    """PostgreSQL bulk load: the GIN index is dropped, the rows go in with COPY (the generated column
    computes every `search_vector` as it would for a crawled article), then the newest ids' index is
    built over the newest RECENT_IDS (as the nightly cleanup leaves it: SearchStore.refresh_recent_index)
    and the older ids' bands each get theirs (as migration 0036 builds them), and the table is vacuumed
    and analysed (what autovacuum would do)."""
    import psycopg

    with psycopg.connect(sa.make_url(url).set(drivername="postgresql").render_as_string(False)) as conn:
        # Migration 0034's index of the newest ids, over every id of an empty table (and no band yet).
        conn.execute("DROP INDEX IF EXISTS ix_articles_search_recent")
        with conn.cursor().copy(f"COPY articles ({COLUMNS}) FROM STDIN") as copy:
            for done, row in enumerate(source, 1):
                copy.write_row(row)
                progress(done, begun)
        conn.commit()
        print(f"  rows written ({time.perf_counter() - begun:.0f} s); building the GIN indexes", flush=True)
        conn.execute("SET maintenance_work_mem = '512MB'")
        (top,) = conn.execute("SELECT max(id) FROM articles").fetchone() or (None,)
        floor = max(int(top or 0) - RECENT_IDS + 1, 1)
        conn.execute("UPDATE articles_search_recent_floor SET id = %s", (floor,))
        recent = "CREATE INDEX ix_articles_search_recent ON articles USING gin (search_vector) WHERE id >= "
        conn.execute(f"{recent}{floor}")
        for low in range(1, floor, RECENT_IDS):
            high = min(low + RECENT_IDS, floor)
            conn.execute(f"CREATE INDEX {band_definition(low, high)}")
            conn.execute("INSERT INTO articles_search_bands (low, high) VALUES (%s, %s)", (low, high))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE articles")


PREVIOUS_COMMIT = "6ea4736"  # the search plan before migration 0036 (PostgreSQL's bands)


def previous_search_store(commit: str) -> type[SearchStore]:
    """The SearchStore of `commit` (`--previous`), loaded from git beside the current one: the previous plan,
    measured in the same run on the same articles (on PostgreSQL, on `--baseline-database`, which holds
    the schema it was written for)."""
    source = subprocess.run(
        ["git", "show", f"{commit}:src/mediabeat/db/stores/search.py"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType(f"previous_search_store_{commit}")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, f"{commit}:search.py", "exec"), module.__dict__)
    store: type[SearchStore] = module.SearchStore
    return store


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(
    url: str,
    workload: dict[str, list[str]],
    repeats: int,
    like_limit: int,
    previous: str | None,
    warm: bool = False,
    baseline_url: str | None = None,
) -> dict[str, dict[str, Any]]:
    """p50/p99 (ms) per category for the index (and, with `previous`, the plan of that commit; on
    `baseline_url` when given, else on the same database; with `baseline_url` alone, the current plan
    on that database: each query runs through both, one after the other) and for the LIKE scan, and
    the mean number of hits."""
    db = Database(url)
    baseline = Database(baseline_url) if baseline_url else None
    stores: dict[str, SearchStore] = {"": SearchStore(db)}
    if previous or baseline is not None:
        stores["prev_"] = (previous_search_store(previous) if previous else SearchStore)(baseline or db)
    results: dict[str, dict[str, Any]] = {}
    heap.settle()  # as `mediabeat serve` and `mediabeat worker` do once started (src/mediabeat/heap.py)
    try:
        if warm:
            # Every query once through every plan first: the measured runs then find their pages in the
            # server's cache, as a server that has been answering queries would (the first run of a
            # query otherwise reads its candidates' rows from the OS: the tail of the figures).
            for sources in workload.values():
                for source in sources:
                    for store in stores.values():
                        await store.search(parse_query(source), org_id=1, limit=20)
        for category, sources in workload.items():
            timings: dict[str, list[float]] = {name: [] for name in stores}
            likes, hits, slowest = [], [], []
            for index, source in enumerate(sources):
                query = parse_query(source)
                # Each plan runs first for every other query: the first run of a query reads the pages
                # from disk (or the OS cache) that the next run finds in SQLite's or PostgreSQL's cache.
                order = list(stores.items()) if index % 2 == 0 else list(stores.items())[::-1]
                for _ in range(repeats):
                    for name, store in order:
                        began = time.perf_counter()
                        found = await store.search(query, org_id=1, limit=20)
                        timings[name].append((time.perf_counter() - began) * 1000)
                slowest.append((max(timings[""][-repeats:]), source))  # the current plan's slowest run of it
                hits.append(len(found))
            for source in sources[:like_limit]:
                condition, params = like_condition(source)
                statement = sa.text(
                    f"SELECT id FROM articles WHERE org_id = 1 AND {condition} ORDER BY id DESC LIMIT 20"
                ).bindparams(**params)
                async with db.read() as conn:
                    began = time.perf_counter()
                    (await conn.execute(statement)).all()
                    likes.append((time.perf_counter() - began) * 1000)
            results[category] = {
                "like_p50": percentile(likes, 50) if likes else float("nan"),
                "like_p99": percentile(likes, 99) if likes else float("nan"),
                "hits": statistics.mean(hits),
                "samples": len(timings[""]),
                "like_samples": len(likes),
                "slowest": sorted(slowest, reverse=True)[:3],
            }
            for name, values in timings.items():
                results[category] |= {f"{name}p50": percentile(values, 50), f"{name}p99": percentile(values, 99)}
    finally:
        await db.dispose()
        if baseline is not None:
            await baseline.dispose()
    return results


def report(name: str, n: int, load_seconds: float, results: dict[str, dict[str, Any]]) -> None:
    loaded = "loaded earlier" if load_seconds != load_seconds else f"written and indexed in {load_seconds:.0f} s"
    print(f"\n{name}: {n:,} articles, {loaded} ({n / load_seconds:,.0f}/s)")
    previous = any("prev_p50" in r for r in results.values())
    print(
        f"{'query':<8} {'p50 ms':>8} {'p99 ms':>8}"
        + (f" {'prev p50':>9} {'prev p99':>9}" if previous else "")
        + f" {'LIKE p50':>9} {'LIKE p99':>9} {'hits':>5}  samples"
    )
    for category, r in results.items():
        print(
            f"{category:<8} {r['p50']:>8.1f} {r['p99']:>8.1f}"
            + (f" {r['prev_p50']:>9.1f} {r['prev_p99']:>9.1f}" if previous else "")
            + f" {r['like_p50']:>9.1f} {r['like_p99']:>9.1f} {r['hits']:>5.1f}"
            + f"  {r['samples']:.0f} / {r['like_samples']:.0f}"
        )
    print("the slowest queries (their slowest run):")
    for category, r in results.items():
        print(f"  {category:<8} " + ", ".join(f"{source} {ms:.1f} ms" for ms, source in r["slowest"]))


def postgres_database(admin_url: str, name: str, keep: bool) -> tuple[str, Callable[[], None]]:
    """The database `name` on the server of `admin_url` (made afresh unless `keep`), and what drops it."""
    engine = sa.create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT")
    if not keep:
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    else:
        with engine.connect() as conn:
            if not conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
                conn.execute(sa.text(f"CREATE DATABASE {name}"))

    def drop() -> None:
        if not keep:
            with engine.connect() as conn:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        engine.dispose()

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


def run(name: str, url: str, words: list[str], workload: dict[str, list[str]], args: argparse.Namespace) -> None:
    """Load the articles unless the database already holds them (a kept one), then measure and report."""
    if stored_articles(url) == args.articles:
        print(f"{name}: reusing the {args.articles:,} articles already stored (migrated to the latest schema)")
        began = time.perf_counter()
        migrate.upgrade(url)
        print(f"{name}: migrated in {time.perf_counter() - began:.0f} s", flush=True)
        seconds = float("nan")
    else:
        seconds = load(url, words, args.articles, args.seed)
        print(f"{name}: {args.articles:,} articles written and indexed in {seconds:.0f} s", flush=True)
    if args.load_only:
        return
    print(f"{name}: measuring; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    baseline = None
    if args.baseline_database and "postgres" in name.lower():
        baseline = url.rsplit("/", 1)[0] + f"/{args.baseline_database}"
        plan = f"the plan of {args.previous}" if args.previous else "the same plan"
        print(f"{name}: the previous columns are {plan} on the database {args.baseline_database}")
    results = asyncio.run(
        measure(url, workload, args.repeats, args.like_queries, args.previous, args.warm, baseline_url=baseline)
    )
    report(name, args.articles, seconds, results)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=1_000_000, help="How many articles (default 1,000,000)")
    parser.add_argument("--queries", type=int, default=40, help="Queries per category")
    parser.add_argument("--repeats", type=int, default=3, help="Runs of each query through the index")
    parser.add_argument("--like-queries", type=int, default=10, help="Queries per category for the LIKE scan")
    parser.add_argument("--postgres", help="A PostgreSQL URL: a scratch database is made on that server")
    parser.add_argument("--only", choices=("sqlite", "postgres"), help="Measure one database only")
    parser.add_argument("--sqlite-file", help="Keep the SQLite database in this file (reused if it holds the articles)")
    parser.add_argument(
        "--postgres-database", help="Keep the PostgreSQL database under this name (reused if it holds the articles)"
    )
    parser.add_argument("--load-only", action="store_true", help="Write the articles into the kept databases only")
    parser.add_argument(
        "--previous",
        nargs="?",
        const=PREVIOUS_COMMIT,
        help=f"Also measure the plan of this commit (default {PREVIOUS_COMMIT}), each query through both",
    )
    parser.add_argument(
        "--baseline-database",
        help="PostgreSQL: measure each query on this database of the same server too, as the previous columns "
        "(the same articles under the previous schema, for a change of storage; with --previous, that plan's)",
    )
    parser.add_argument("--warm", action="store_true", help="Run every query once through every plan before measuring")
    parser.add_argument(
        "--categories", default=",".join(CATEGORIES), help="Query categories to measure (comma-separated)"
    )
    parser.add_argument("--corpus", help="The corpus folder (default: ../shared/corpus beside the project)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    corpus = find_corpus(args.corpus)
    if corpus is None:
        sys.exit("the shared corpus (../shared/corpus) is not on this machine; give --corpus")
    words = corpus_words(corpus)
    print(f"corpus: {len(words):,} words from the shared real pages")
    workload = {c: q for c, q in queries(words, args.seed, args.queries).items() if c in args.categories.split(",")}
    if args.only != "postgres":
        with tempfile.TemporaryDirectory(prefix="search-bench-db-") as tmp:
            path = Path(args.sqlite_file or f"{tmp}/bench.db")
            run("SQLite (FTS5)", f"sqlite:///{path}", words, workload, args)
            print(f"SQLite file: {path.stat().st_size / 1e6:,.0f} MB")
    if args.postgres and args.only != "sqlite":
        name = args.postgres_database or "mediabeat_search_bench"
        url, drop = postgres_database(args.postgres, name, keep=args.postgres_database is not None)
        try:
            run("PostgreSQL (tsvector, GIN)", url, words, workload, args)
        finally:
            drop()


if __name__ == "__main__":
    main()
