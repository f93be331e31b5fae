"""SQLite search: the words held by half of the articles, which bm25() weighs at nothing, are counted
(migration 0033, the nightly cleanup) and left out of ranking, which then orders and scores the hits as
before; NEAR is weighed as its two sides."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command

from mediabeat.db import migrate
from mediabeat.db.engine import Database, sync_url
from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.stores.retention import RetentionStore
from mediabeat.db.stores.search import SearchStore
from mediabeat.domain.search import SearchHit
from mediabeat.search.query import Query, parse_query
from mediabeat.search.tokens import tokenize
from mediabeat.tasks.base import RunContext
from mediabeat.tasks.cleanup import NightlyCleanup
from tests.integration.test_search_bounds import NOW, _article

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

# Twelve articles. `harbour` is in all of them and `lights` in seven (both weigh nothing: in half or more);
# `ferry` is in five, as often as the article's place in a cycle says; `zeppelin` in two.
TEXTS = [
    " ".join(
        ["harbour"]
        + ["lights"] * (i % 2 + (i == 0))
        + ["ferry"] * ((1 + i % 4) if i % 5 in (0, 2) else 0)
        + ["zeppelin"] * (i in (3, 7))
        + ["tide", "rope", "mast"][: 1 + i % 3]
        + [f"report{i}"]
    )
    for i in range(12)
]
QUERIES = [
    "ferry",
    "ferry harbour",
    "ferry -zeppelin",
    "harbour lights ferry",
    "(zeppelin OR ferry) harbour",
    "(harbour lights) OR zeppelin",
    '"harbour lights"',
    "harbour",
    "harbour NEAR/3 ferry",
]


class _AsWritten(SearchStore):
    """Ranking weighs the query as it is written, as before the words were counted."""

    @staticmethod
    def _ranking_expression(query: Query, weightless: frozenset[str]) -> str | None:
        return SearchStore._ranking_expression(query, frozenset())


def _expected_weightless() -> set[str]:
    """The words of the titles and texts held by at least half of the articles, counted here in Python."""
    holders = Counter(word for i, text in enumerate(TEXTS) for word in set(tokenize(f"Report {i} {text}")))
    return {word for word, n in holders.items() if 2 * n >= len(TEXTS)}


def _expected_common() -> set[str]:
    """The words held by at least a twentieth of the articles (all of them the newest here)."""
    holders = Counter(word for i, text in enumerate(TEXTS) for word in set(tokenize(f"Report {i} {text}")))
    return {word for word, n in holders.items() if 20 * n >= len(TEXTS)}


def _ranked(hits: list[SearchHit]) -> list[tuple[int, float]]:
    return [(h.id, round(h.score, 3)) for h in hits]


async def _seed(db: Database) -> list[int]:
    org = (await OrgStore(db).create("newsroom", now=NOW)).id
    store = ArticleStore(db)
    return [await store.save(_article(org, i, text), now=NOW) for i, text in enumerate(TEXTS)]


async def _recorded(db: Database) -> dict[str, tuple[int, int]]:
    async with db.read() as conn:
        rows = await conn.execute(sa.text("SELECT term, articles, recent_articles FROM search_weightless_words"))
        return {str(r.term): (int(r.articles), int(r.recent_articles)) for r in rows}


async def test_the_words_in_half_the_articles_are_counted_and_ranking_leaves_them_out(db: Database) -> None:
    ids = await _seed(db)
    before = {q: await SearchStore(db).search(parse_query(q), org_id=1, limit=20) for q in QUERIES}
    assert await _recorded(db) == {}  # nothing counted yet: every word is weighed, as written

    expected = _expected_weightless()
    assert {"harbour", "lights"} <= expected and "ferry" not in expected
    assert await SearchStore(db).count_weightless_words() == len(expected)
    recorded = await _recorded(db)
    assert set(recorded) == expected
    assert recorded["harbour"] == (12, 12) and recorded["lights"] == (7, 7)

    weighed: list[str | None] = []

    class Spy(SearchStore):
        @staticmethod
        def _ranking_expression(query: Query, weightless: frozenset[str]) -> str | None:
            weighed.append(SearchStore._ranking_expression(query, weightless))
            return weighed[-1]

    for q in QUERIES:
        after = await Spy(db).search(parse_query(q), org_id=1, limit=20)
        as_written = await _AsWritten(db).search(parse_query(q), org_id=1, limit=20)
        if "NEAR" not in q:
            # The same hits in the same order with the same scores (to a score's three digits).
            assert _ranked(after) == _ranked(before[q]) == _ranked(as_written), q
        assert {h.id for h in after} == {h.id for h in before[q]}, q
    # The phrase and the NEAR query are weighed twice: their page, short in the newest articles' index,
    # is searched again in the index of every article.
    assert weighed == [
        '"ferry"',
        '"ferry"',
        '"ferry"',
        '"ferry"',
        '("zeppelin" OR "ferry")',
        '(("harbour" AND "lights") OR "zeppelin")',
        '"harbour lights"',
        '"harbour lights"',
        None,
        '"ferry"',
        '"ferry"',
    ]
    # Nothing left to weigh: every hit scores 0, newest first, as bm25's weight of 1e-6 orders them.
    only_common = await SearchStore(db).search(parse_query("harbour"), org_id=1, limit=5, offset=2)
    assert [h.score for h in only_common] == [0.0] * 5
    assert [h.id for h in only_common] == ids[9:4:-1]
    collapsed = await SearchStore(db).search(parse_query("harbour"), org_id=1, limit=3, collapse=True)
    assert [h.id for h in collapsed] == ids[:8:-1]


async def test_near_is_weighed_as_its_two_sides(db: Database) -> None:
    ids = await _seed(db)
    await SearchStore(db).count_weightless_words()
    hits = await SearchStore(db).search(parse_query("ferry NEAR/2 zeppelin"), org_id=1, limit=20)
    # Article 7 holds both (its last ferry next to the zeppelin); article 3 holds the zeppelin and no ferry.
    assert [h.id for h in hits] == [ids[7]]
    ferries = {ids[i]: TEXTS[i].split().count("ferry") for i in range(12)}
    found = await SearchStore(db).search(parse_query("harbour NEAR/3 ferry"), org_id=1, limit=20)
    assert {h.id for h in found} == {i for i, n in ferries.items() if n}
    # Weighed by its ferries alone (`harbour` weighs nothing): the more ferries, the higher.
    assert [ferries[h.id] for h in found] == [4, 3, 3, 2, 1]
    assert all(h.score > 0 for h in found)


async def test_the_nightly_cleanup_counts_them_again(db: Database) -> None:
    await _seed(db)
    cleanup = NightlyCleanup(
        store=RetentionStore(db), job_retention_days=30, run_retention_days=60, batch_size=10, search=SearchStore(db)
    )
    now = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
    context = RunContext(1, "nightly-cleanup", "schedule", now, now, {}, logging.getLogger("mediabeat.test"))
    result = await cleanup(context)
    assert result["search_weightless_words"] == len(_expected_weightless())
    assert set(await _recorded(db)) == _expected_weightless()
    assert result["search_common_words"] == len(_expected_common())
    async with db.read() as conn:
        listed = await conn.execute(sa.text("SELECT term, recent_articles FROM search_common_words"))
        assert {str(r.term): int(r.recent_articles) for r in listed}["harbour"] == len(TEXTS)


def test_the_migration_counts_them_in_an_existing_archive(database_url: str) -> None:
    migrate.upgrade(database_url)
    engine = sa.create_engine(sync_url(database_url))
    insert = sa.text(
        "INSERT INTO articles (org_id, url, url_hash, title, text, fetched_at, created_at) "
        "VALUES (:org, :url, :url, :title, :text, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    with engine.connect() as conn:
        config = migrate.alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0032")
        conn.commit()
        org = conn.execute(
            sa.text("INSERT INTO organizations (name, created_at) VALUES ('old', CURRENT_TIMESTAMP) RETURNING id")
        ).scalar_one()
        for i, text in enumerate(TEXTS):
            conn.execute(insert, {"org": org, "url": f"https://old.test/{i}", "title": f"Report {i}", "text": text})
        conn.commit()
    engine.dispose()
    migrate.upgrade(database_url)
    engine = sa.create_engine(sync_url(database_url))
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT term, articles FROM search_weightless_words")).all()
        common = conn.execute(sa.text("SELECT term FROM search_common_words")).scalars().all()
    engine.dispose()
    assert {str(r.term) for r in rows} == _expected_weightless()
    assert set(common) == _expected_common()
    assert dict((str(r.term), int(r.articles)) for r in rows)["lights"] == 7


async def test_the_search_upkeep_command_counts_them_now(db: Database, database_url: str) -> None:
    await _seed(db)
    env = dict(os.environ, MEDIABEAT_DATABASE_URL=database_url)
    done = subprocess.run(
        [sys.executable, "-m", "mediabeat", "db", "search-upkeep"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"{len(_expected_weightless())} words held by half of the articles or more counted; "
        f"{len(_expected_common())} words held by a twentieth of the newest articles or more listed"
    )
    assert set(await _recorded(db)) == _expected_weightless()
