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
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mediabeat.db import migrate
from mediabeat.db.engine import Database, sync_url
from mediabeat.db.stores.search import SearchStore
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


def load(url: str, words: list[str], n: int, seed: int) -> float:
    """Migrate a fresh database at `url` and write `n` articles (the index follows through triggers); seconds taken."""
    migrate.upgrade(url)
    engine = sa.create_engine(sync_url(url))
    begun = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO organizations (name, created_at) VALUES ('bench', CURRENT_TIMESTAMP)"))
    insert = sa.text(
        "INSERT INTO articles (org_id, url, url_hash, title, text, language, published_at, fetched_at, created_at) "
        "VALUES (1, :url, :hash, :title, :text, 'en', :published, :published, :published)"
    )
    batch: list[dict[str, object]] = []
    done = 0
    for article in articles(words, n, seed):
        published = (
            article.published_at if engine.dialect.name == "postgresql" else article.published_at.replace(tzinfo=None)
        )
        batch.append(
            {
                "url": article.url,
                "hash": hashlib.sha256(article.url.encode()).hexdigest(),
                "title": article.title,
                "text": article.text,
                "published": published,
            }
        )
        if len(batch) == BATCH:
            with engine.begin() as conn:
                conn.execute(insert, batch)
            done += len(batch)
            batch = []
            if done % 50_000 == 0:
                print(f"  {done:,} articles written ({time.perf_counter() - begun:.0f} s)", flush=True)
    if batch:
        with engine.begin() as conn:
            conn.execute(insert, batch)
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE") if engine.dialect.name == "postgresql" else sa.text("PRAGMA optimize"))
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:  # merge the FTS5 segments, as a quiet night's maintenance would
            conn.execute(sa.text("INSERT INTO articles_search(articles_search) VALUES ('optimize')"))
    engine.dispose()
    return time.perf_counter() - begun


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(
    url: str, workload: dict[str, list[str]], repeats: int, like_limit: int
) -> dict[str, dict[str, float]]:
    """p50/p99 (ms) per category for the index and for the LIKE scan, and the mean number of hits."""
    db = Database(url)
    store = SearchStore(db)
    results: dict[str, dict[str, float]] = {}
    try:
        for category, sources in workload.items():
            timings, likes, hits = [], [], []
            for source in sources:
                query = parse_query(source)
                for _ in range(repeats):
                    began = time.perf_counter()
                    found = await store.search(query, org_id=1, limit=20)
                    timings.append((time.perf_counter() - began) * 1000)
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
                "p50": percentile(timings, 50),
                "p99": percentile(timings, 99),
                "like_p50": percentile(likes, 50),
                "like_p99": percentile(likes, 99),
                "hits": statistics.mean(hits),
                "samples": len(timings),
                "like_samples": len(likes),
            }
    finally:
        await db.dispose()
    return results


def report(name: str, n: int, load_seconds: float, results: dict[str, dict[str, float]]) -> None:
    print(f"\n{name}: {n:,} articles, written and indexed in {load_seconds:.0f} s ({n / load_seconds:,.0f}/s)")
    print(f"{'query':<8} {'p50 ms':>8} {'p99 ms':>8} {'LIKE p50':>9} {'LIKE p99':>9} {'hits':>5}  samples")
    for category, r in results.items():
        print(
            f"{category:<8} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['like_p50']:>9.1f} {r['like_p99']:>9.1f} "
            f"{r['hits']:>5.1f}  {r['samples']:.0f} / {r['like_samples']:.0f}"
        )


def postgres_database(admin_url: str, name: str) -> tuple[str, Callable[[], None]]:
    """A fresh database `name` on the server of `admin_url`, and the function that drops it."""
    engine = sa.create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))

    def drop() -> None:
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        engine.dispose()

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=1_000_000, help="How many articles (default 1,000,000)")
    parser.add_argument("--queries", type=int, default=40, help="Queries per category")
    parser.add_argument("--repeats", type=int, default=3, help="Runs of each query through the index")
    parser.add_argument("--like-queries", type=int, default=10, help="Queries per category for the LIKE scan")
    parser.add_argument("--postgres", help="A PostgreSQL URL: a scratch database is made on that server")
    parser.add_argument("--corpus", help="The corpus folder (default: ../shared/corpus beside the project)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    corpus = find_corpus(args.corpus)
    if corpus is None:
        sys.exit("the shared corpus (../shared/corpus) is not on this machine; give --corpus")
    words = corpus_words(corpus)
    print(f"corpus: {len(words):,} words from the shared real pages")
    workload = queries(words, args.seed, args.queries)
    with tempfile.TemporaryDirectory(prefix="search-bench-db-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        seconds = load(url, words, args.articles, args.seed)
        size = Path(f"{tmp}/bench.db").stat().st_size
        print(f"SQLite file: {size / 1e6:,.0f} MB")
        report(
            "SQLite (FTS5)",
            args.articles,
            seconds,
            asyncio.run(measure(url, workload, args.repeats, args.like_queries)),
        )
    if args.postgres:
        url, drop = postgres_database(args.postgres, "mediabeat_search_bench")
        try:
            seconds = load(url, words, args.articles, args.seed)
            results = asyncio.run(measure(url, workload, args.repeats, args.like_queries))
            report("PostgreSQL (tsvector, GIN)", args.articles, seconds, results)
        finally:
            drop()


if __name__ == "__main__":
    main()
