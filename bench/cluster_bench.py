"""Story-cluster benchmark: pairwise precision and recall on the demo site's labelled articles, and cost per article.

    .venv/bin/python bench/cluster_bench.py [--articles 5040] [--postgres postgresql://postgres@127.0.0.1/postgres]

The labelled set is the demo site's generator (mediabeat.demo.content, seed 1): the first
articles of its 12 sections, of which about 9 % reprint a wire story (another headline,
the last paragraph cut, house-style word changes, a credit line; see `syndicated_copy`). The
label of a reprint is its wire story; every other article is a story of its own. The
unrelated articles are written from the same small set of sentence templates, so they share
far more text than real news does: a hard case for precision.

The clustering runs as in the service: the articles are stored, then clustered in batches of
50 (crawl-queue's flush size) through StoryClusterer on a migrated database (SQLite in a temp
file; PostgreSQL with --postgres), with the LSH bands and signatures in the database.

Each figure is beside a baseline measured in the same run:
- exact hash of the normalised title (Media Cloud's duplicate-story grouping);
- exact hash of the normalised text.

Pairwise: a pair of articles is a true positive when both the clustering and the labels put
it in one story; precision = TP / pairs clustered together, recall = TP / pairs labelled together.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediabeat.clock import FakeClock
from mediabeat.db import migrate
from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore, NewArticle
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.stores.stories import StoryStore
from mediabeat.demo.content import SECTIONS, DemoSiteConfig, make_article, syndicated_story
from mediabeat.stories import sketch
from mediabeat.stories.clusterer import StoryClusterer, sketch_articles

NOW = datetime(2026, 6, 1, tzinfo=UTC)
BATCH = 50


def labelled_set(count: int) -> tuple[list[NewArticle], list[Hashable]]:
    """`count` demo articles (section by section, number by number) and their story labels."""
    site = DemoSiteConfig()
    per_section = -(-count // len(SECTIONS))
    articles, labels = [], []
    for number in range(per_section):
        for slug, _ in SECTIONS:
            item = make_article(site, slug, number)
            url = f"http://127.0.0.1:8001{item.path}"
            articles.append(
                NewArticle(
                    org_id=0,
                    feed_id=None,
                    url=url,
                    url_hash=hashlib.sha256(url.encode()).hexdigest(),
                    canonical_url=url,
                    title=item.title,
                    author=item.author,
                    published_at=item.published,
                    summary=item.summary,
                    text="\n\n".join(item.paragraphs),
                    language="en",
                )
            )
            story = syndicated_story(site, slug, number)
            labels.append(("wire", story) if story is not None else (slug, number))
    return articles[:count], labels[:count]


def pairs(groups: Sequence[Hashable]) -> int:
    return sum(n * (n - 1) // 2 for n in Counter(groups).values())


def precision_recall(predicted: Sequence[Hashable], labels: Sequence[Hashable]) -> tuple[float, float]:
    together = pairs(list(zip(predicted, labels, strict=True)))
    clustered, labelled = pairs(predicted), pairs(labels)
    return (together / clustered if clustered else 1.0), (together / labelled if labelled else 1.0)


def exact_hash_groups(keys: Sequence[str]) -> tuple[list[Hashable], float]:
    """Group by the hash of the normalised key; (groups, ms per article)."""
    started = time.perf_counter()
    groups: list[Hashable] = [hashlib.sha1(" ".join(sketch.normalised_words(key)).encode()).hexdigest() for key in keys]
    return groups, (time.perf_counter() - started) * 1000 / len(keys)


async def run_backend(url: str, articles: list[NewArticle]) -> tuple[list[int], float, float]:
    """Store and cluster `articles` on the database at `url`: (cluster per article, ms per article, sketch ms)."""
    migrate.upgrade(url)
    db = Database(url)
    try:
        org = await OrgStore(db).create("bench", now=NOW)
        stored = [replace(a, org_id=org.id) for a in articles]
        ids: list[int] = []
        for start in range(0, len(stored), 500):
            ids += await ArticleStore(db).save_many(stored[start : start + 500], now=NOW)
        clusterer = StoryClusterer(store=StoryStore(db), clock=FakeClock(NOW))
        rows = [(i, a.title, a.summary, a.text) for i, a in zip(ids, stored, strict=True)]
        started = time.perf_counter()
        sketch_articles(rows)
        sketch_ms = (time.perf_counter() - started) * 1000 / len(rows)
        await StoryStore(db).clear(org.id)
        started = time.perf_counter()
        for start in range(0, len(rows), BATCH):
            await clusterer.cluster(org.id, rows[start : start + BATCH])
        total_ms = (time.perf_counter() - started) * 1000 / len(rows)
        members = await StoryStore(db).memberships(ids)
        clusters = [members[i].cluster_id for i in ids]
        return clusters, total_ms, sketch_ms
    finally:
        await db.dispose()


def postgres_database(admin_url: str) -> tuple[str, sa.Engine, str]:
    name = f"mb_cluster_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), admin, name


def report(name: str, predicted: Sequence[Hashable], labels: Sequence[Hashable], ms: float, extra: str = "") -> None:
    precision, recall = precision_recall(predicted, labels)
    print(f"| {name} | {precision:.3f} | {recall:.3f} | {ms:.2f} ms {extra}|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=5040)
    parser.add_argument("--postgres", help="an admin URL: the benchmark creates and drops a database of its own")
    args = parser.parse_args()
    articles, labels = labelled_set(args.articles)
    copies = sum(1 for label in labels if label[0] == "wire")  # type: ignore[index]
    print(
        f"{len(articles)} articles, {copies} reprints of {len({lb for lb in labels if lb[0] == 'wire'})} wire stories"  # type: ignore[index]
        f" ({pairs(labels)} labelled pairs); NUM_PERM={sketch.NUM_PERM} BANDS={sketch.BANDS} ROWS={sketch.ROWS}"
        f" shingles of {sketch.SHINGLE_WORDS} words, join at estimated Jaccard >= {sketch.JOIN_THRESHOLD}\n"
    )
    print("| method | precision | recall | cost per article |\n| --- | --- | --- | --- |")
    by_title, title_ms = exact_hash_groups([a.title or "" for a in articles])
    report("baseline: exact hash of the normalised title", by_title, labels, title_ms)
    by_text, text_ms = exact_hash_groups([a.text or "" for a in articles])
    report("baseline: exact hash of the normalised text", by_text, labels, text_ms)
    with tempfile.TemporaryDirectory() as tmp:
        clusters, ms, sketch_ms = asyncio.run(run_backend(f"sqlite:///{tmp}/bench.db", articles))
    report("MinHash LSH in the database, SQLite", clusters, labels, ms, f"(sketch alone {sketch_ms:.2f} ms) ")
    if args.postgres:
        url, admin, name = postgres_database(args.postgres)
        try:
            clusters, ms, sketch_ms = asyncio.run(run_backend(url, articles))
            report(
                "MinHash LSH in the database, PostgreSQL", clusters, labels, ms, f"(sketch alone {sketch_ms:.2f} ms) "
            )
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
    sizes = Counter(Counter(clusters).values())
    print(f"\ncluster sizes (last run): {dict(sorted(sizes.items()))}")
    wrong = defaultdict(set)
    for cluster, label in zip(clusters, labels, strict=True):
        wrong[cluster].add(label)
    print(f"clusters mixing two or more stories: {sum(1 for v in wrong.values() if len(v) > 1)}")


if __name__ == "__main__":
    main()
