"""SQLite search: what the triggers keep in the second FTS5 index, over the newest article ids (migration
0031); that a search ranked there finds what the index of every article finds; and that an organisation
alone in the archive is searched without reading a row per candidate."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import sqlalchemy as sa

from mediabeat.db.engine import Database, sync_url
from mediabeat.db.stores import search as search_store
from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.stores.search import SearchStore
from mediabeat.db.tables import article_clusters, story_clusters
from mediabeat.domain.search import SearchHit
from mediabeat.search.query import Query, parse_query
from tests.integration.test_search_bounds import NOW, _article

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

RECENT_IDS: int = importlib.import_module("mediabeat.db.migrations.versions.0031_search_recent").RECENT_IDS
FILLER = "quay crane tide ferry gull rope mast deck"


def _recent_ids(conn: sa.Connection, words: str) -> list[int]:
    sql = "SELECT rowid FROM articles_search_recent WHERE articles_search_recent MATCH :m ORDER BY rowid"
    return [int(i) for i in conn.execute(sa.text(sql), {"m": words}).scalars()]


def _integrity(conn: sa.Connection) -> None:
    for index in ("articles_search", "articles_search_recent"):
        conn.execute(sa.text(f"INSERT INTO {index}({index}) VALUES ('integrity-check')"))


def test_the_triggers_keep_the_newest_ids_in_the_recent_index(database_url: str) -> None:
    engine = sa.create_engine(sync_url(database_url))
    insert = sa.text(
        "INSERT INTO articles (id, org_id, url, url_hash, title, text, fetched_at, created_at) "
        "VALUES (:id, :org, :url, :url, :title, :text, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    with engine.begin() as conn:
        org = conn.execute(
            sa.text("INSERT INTO organizations (name, created_at) VALUES ('desk', CURRENT_TIMESTAMP) RETURNING id")
        ).scalar_one()
        for i in range(1, 6):
            conn.execute(insert, {"id": i, "org": org, "url": f"https://a.test/{i}", "title": "t", "text": "pier"})
        assert _recent_ids(conn, "pier") == [1, 2, 3, 4, 5]
        # An article RECENT_IDS above id 3 pushes ids 1-3 out of the slice, and the floor up to 4.
        newest = RECENT_IDS + 3
        conn.execute(insert, {"id": newest, "org": org, "url": "https://a.test/n", "title": "t", "text": "pier"})
        assert conn.execute(sa.text("SELECT id FROM articles_search_recent_floor")).scalar_one() == 4
        assert _recent_ids(conn, "pier") == [4, 5, newest]
        # Out of the slice, an article is deleted or edited in the index of every article only.
        conn.execute(sa.text("DELETE FROM articles WHERE id = 2"))
        conn.execute(sa.text("UPDATE articles SET text = 'jetty' WHERE id = 1"))
        # In it, in both indexes.
        conn.execute(sa.text("DELETE FROM articles WHERE id = 5"))
        conn.execute(sa.text("UPDATE articles SET text = 'jetty' WHERE id = 4"))
        assert _recent_ids(conn, "pier") == [newest]
        assert _recent_ids(conn, "jetty") == [4]
        full = "SELECT rowid FROM articles_search WHERE articles_search MATCH :m ORDER BY rowid"
        assert conn.execute(sa.text(full), {"m": "jetty"}).scalars().all() == [1, 4]
        assert conn.execute(sa.text(full), {"m": "pier"}).scalars().all() == [3, newest]
        _integrity(conn)
    engine.dispose()


class _Spy(SearchStore):
    """Records, for each search, whether its page was ranked in the index of the newest articles, and
    which candidates followed the ranked ones unweighed (the last ranking of the search: a phrase's page
    left short in the newest articles' index is searched again in the index of every article)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.recent: list[bool] = []
        self.unweighed: list[list[int]] = []
        self.plans: list[tuple[str, list[int], list[int]]] = []

    async def search(self, query: Query, **kwargs: Any) -> list[SearchHit]:
        self.plans.clear()
        hits = await super().search(query, **kwargs)
        if self.plans:
            self.recent.append(self.plans[-1][0] == search_store.RECENT_INDEX)
            self.unweighed.append(self.plans[-1][2])
        return hits

    def _ranking_plan(self, costly: bool, floor: int | None, candidates: list[int]) -> tuple[str, list[int], list[int]]:
        self.plans.append(super()._ranking_plan(costly, floor, candidates))
        return self.plans[-1]


class _Full(SearchStore):
    """Every search ranked in the index of every article, as before migration 0031."""

    def _ranking_plan(self, costly: bool, floor: int | None, candidates: list[int]) -> tuple[str, list[int], list[int]]:
        return search_store.FULL_INDEX, candidates, []


async def _shrink_slice(db: Database, floor: int) -> None:
    """The slice as the triggers leave it once the archive holds RECENT_IDS more ids: ids from `floor` up."""
    async with db.write() as conn:
        await conn.execute(
            sa.text(
                "DELETE FROM articles_search_recent WHERE rowid >= (SELECT id FROM articles_search_recent_floor) "
                "AND rowid < :floor"
            ),
            {"floor": floor},
        )
        await conn.execute(sa.text("UPDATE articles_search_recent_floor SET id = :floor"), {"floor": floor})


async def test_a_search_ranks_in_the_recent_index_what_the_whole_index_would(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_store, "RANK_CANDIDATES", 6)
    orgs = OrgStore(db)
    org = (await orgs.create("newsroom", now=NOW)).id
    rival = (await orgs.create("rival", now=NOW)).id
    store = ArticleStore(db)
    ids: list[int] = []
    for i in range(40):
        # Every third article mentions the harbour lights, as often as its place in a cycle of five says;
        # the oldest ones alone mention the zeppelin; the rest are about other things.
        if i % 3 == 0:
            text = " ".join(["harbour lights"] * (1 + i % 5) + [FILLER] * (6 - i % 5))
        else:
            text = FILLER + " lights" * (i % 2)
        if i < 4:
            text += " zeppelin"
        ids.append(await store.save(_article(org, i, text), now=NOW))
    for i in range(10):  # the newest ten ids: four of them mention the harbour
        await store.save(_article(rival, 100 + i, ("harbour lights " if i % 3 == 0 else "") + FILLER), now=NOW)

    spy = _Spy(db)
    queries = ["harbour", '"harbour lights"', "harbour NEAR/2 lights", "zeppelin", "harbour -lights", "lights"]
    # The slice holds the whole archive: every search with a match is ranked there.
    for q in queries:
        hits = await spy.search(parse_query(q), org_id=org, limit=20)
        assert [h.id for h in hits] == [h.id for h in await _Full(db).search(parse_query(q), org_id=org, limit=20)]
    assert spy.recent == [True] * (len(queries) - 1)  # nothing matches the harbour without its lights

    # The slice holds the newest 30 of the organisation's 40 articles, and the rival's ten.
    await _shrink_slice(db, ids[10])
    spy.recent.clear()
    for q in queries:
        for limit, offset in ((20, 0), (3, 2)):
            found = await spy.search(parse_query(q), org_id=org, limit=limit, offset=offset)
            expected = await _Full(db).search(parse_query(q), org_id=org, limit=limit, offset=offset)
            assert [h.id for h in found] == [h.id for h in expected], q
            assert [h.snippet for h in found] == [h.snippet for h in expected], q
        collapsed = await spy.search(parse_query(q), org_id=org, limit=20, collapse=True)
        expected = await _Full(db).search(parse_query(q), org_id=org, limit=20, collapse=True)
        assert [h.id for h in collapsed] == [h.id for h in expected], q
    # The common words' newest six matches all lie in the slice; the zeppelin's do not.
    assert spy.recent == [True] * 9 + [False] * 3 + [True] * 3
    assert {h.id for h in await spy.search(parse_query("zeppelin"), org_id=org, limit=20)} == set(ids[:4])
    # Fourteen articles in the slice mention the harbour; the rival's own four are its candidates, and
    # lie there too.
    rival_hits = await spy.search(parse_query("harbour"), org_id=rival, limit=20)
    assert spy.recent[-1] is True
    assert [h.id for h in rival_hits] == [
        h.id for h in await _Full(db).search(parse_query("harbour"), org_id=rival, limit=20)
    ]
    assert len(rival_hits) == 4


async def test_an_organisation_alone_in_the_archive_is_searched_from_the_index_alone(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    orgs = OrgStore(db)
    org = (await orgs.create("newsroom", now=NOW)).id
    store = ArticleStore(db)
    ids = [await store.save(_article(org, i, f"harbour lights {FILLER} {i}"), now=NOW) for i in range(8)]
    sole: list[bool] = []
    check = SearchStore._sole_organisation

    async def spy(conn: Any, org_id: int) -> bool:
        sole.append(await check(conn, org_id))
        return sole[-1]

    monkeypatch.setattr(SearchStore, "_sole_organisation", staticmethod(spy))
    for q in ("harbour", '"harbour lights"'):
        assert {h.id for h in await SearchStore(db).search(parse_query(q), org_id=org, limit=20)} == set(ids), q
    assert sole == [True, True]
    # Another organisation's newest article: each searches its own again.
    rival = (await orgs.create("rival", now=NOW)).id
    theirs = await store.save(_article(rival, 1, f"harbour lights {FILLER}"), now=NOW)
    for q in ("harbour", '"harbour lights"'):
        assert {h.id for h in await SearchStore(db).search(parse_query(q), org_id=org, limit=20)} == set(ids), q
        assert [h.id for h in await SearchStore(db).search(parse_query(q), org_id=rival, limit=20)] == [theirs], q
    assert sole[2:] == [False] * 4


async def test_a_phrase_whose_matches_reach_below_the_slice_ranks_the_newest_first_and_loses_none(
    db: Database,
) -> None:
    orgs = OrgStore(db)
    org = (await orgs.create("newsroom", now=NOW)).id
    store = ArticleStore(db)
    ids: list[int] = []
    for i in range(30):
        # Every fourth article mentions the harbour lights, as often as its place in a cycle of three says.
        text = " ".join(["harbour lights"] * (1 + i // 4 % 3) + [FILLER] * 3) if i % 4 == 0 else f"{FILLER} lights"
        ids.append(await store.save(_article(org, i, text), now=NOW))
    matches = ids[::4]
    await _shrink_slice(db, ids[20])  # the slice holds the newest ten ids: three of the eight matches
    newer = [i for i in matches if i >= ids[20]]
    older = [i for i in matches if i < ids[20]]

    spy = _Spy(db)
    for q in ('"harbour lights"', "harbour NEAR/1 lights"):
        spy.unweighed.clear()
        hits = await spy.search(parse_query(q), org_id=org, limit=20)
        full = [h.id for h in await _Full(db).search(parse_query(q), org_id=org, limit=20)]
        # Nothing is lost: the matches in the slice come first, ranked as the whole index ranks them
        # (one phrase: its weight is the same factor for every article), then the older ones, newest first.
        assert full[:3] == [ids[20], ids[8], ids[28]], q  # the whole index mixes old and new
        assert [h.id for h in hits] == [i for i in full if i in newer] + sorted(older, reverse=True), q
        assert all(h.score > 0 for h in hits[: len(newer)]) and all(h.score == 0 for h in hits[len(newer) :])
        assert spy.recent[-1] is True and spy.unweighed == [sorted(older, reverse=True)]
        assert all("«" not in h.snippet or h.id in matches for h in hits)
        # Pages of any size join up into the same list, and collapsed results hold the same stories.
        paged = [
            h.id
            for offset in range(0, 8, 3)
            for h in await spy.search(parse_query(q), org_id=org, limit=3, offset=offset)
        ]
        assert paged == [h.id for h in hits]
        collapsed = await spy.search(parse_query(q), org_id=org, limit=20, collapse=True)
        assert [h.id for h in collapsed] == [h.id for h in hits]

    # A story with a copy in each tier: the newer copy stands for it, wherever the older would have ranked.
    phrase = [h.id for h in await spy.search(parse_query('"harbour lights"'), org_id=org, limit=20)]
    async with db.write() as conn:
        story = (
            await conn.execute(
                story_clusters.insert().values(org_id=org, created_at=NOW).returning(story_clusters.c.id)
            )
        ).scalar_one()
        for article in (ids[8], ids[24]):
            await conn.execute(
                article_clusters.insert().values(
                    article_id=article, org_id=org, cluster_id=story, signature=b"\0" * 8, clustered_at=NOW
                )
            )
    collapsed = await spy.search(parse_query('"harbour lights"'), org_id=org, limit=20, collapse=True)
    assert [h.id for h in collapsed] == [i for i in phrase if i != ids[8]]
    assert [h.cluster_size for h in collapsed if h.id == ids[24]] == [2]

    # A word's count is cheap in the index of every article: its candidates are all ranked there.
    spy.unweighed.clear()
    word = await spy.search(parse_query("harbour"), org_id=org, limit=20)
    assert [h.id for h in word] == [h.id for h in await _Full(db).search(parse_query("harbour"), org_id=org, limit=20)]
    assert spy.recent[-1] is False and spy.unweighed == [[]]
    assert all(h.score > 0 for h in word)

    # Unless it is common: the nightly count lists the words held by a twentieth of the newest articles
    # (here every word of the slice's ten), and a query that weighs one is ranked in two tiers too.
    assert await SearchStore(db).count_common_words() > 0
    for q in ("harbour", "harbour lights -zeppelin"):
        spy.unweighed.clear()
        hits = await spy.search(parse_query(q), org_id=org, limit=20)
        assert [h.id for h in hits] == [i for i in full if i in newer] + sorted(older, reverse=True), q
        assert spy.recent[-1] is True and spy.unweighed == [sorted(older, reverse=True)], q
    async with db.write() as conn:  # neither word listed: the whole archive ranks them again
        await conn.execute(sa.text("DELETE FROM search_common_words WHERE term IN ('harbour', 'lights')"))
    spy.unweighed.clear()
    rare = await spy.search(parse_query("harbour lights -zeppelin"), org_id=org, limit=20)
    assert spy.recent[-1] is False and spy.unweighed == [[]]
    assert all(h.score > 0 for h in rare) and {h.id for h in rare} == set(matches)


async def test_a_floor_found_among_the_newest_articles_is_not_looked_for_again(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_store, "POSITION_CHECKS", 5)
    org = (await OrgStore(db).create("newsroom", now=NOW)).id
    store = ArticleStore(db)
    ids = [await store.save(_article(org, i, "the harbour lights"), now=NOW) for i in range(2)]
    ids += [await store.save(_article(org, i, f"lights over the harbour {i}"), now=NOW) for i in range(2, 12)]
    floors: list[str] = []
    find = SearchStore._sqlite_floor

    async def spy(self: SearchStore, conn: Any, query: Query, index: str) -> int | None:
        floors.append(index)
        return await find(self, conn, query, index)

    monkeypatch.setattr(SearchStore, "_sqlite_floor", spy)
    # The newest five articles holding both words lie in the slice: the page is short (the phrase is older),
    # and the index of every article is searched from the same floor, not from one counted again there.
    assert await SearchStore(db).search(parse_query('"harbour lights"'), org_id=org, limit=20) == []
    assert floors == [search_store.RECENT_INDEX]
    monkeypatch.setattr(search_store, "POSITION_CHECKS", 20)  # more than the slice holds: counted in both
    floors.clear()
    hits = await SearchStore(db).search(parse_query('"harbour lights"'), org_id=org, limit=20)
    assert {h.id for h in hits} == set(ids[:2])
    assert floors == [search_store.RECENT_INDEX, search_store.FULL_INDEX]
