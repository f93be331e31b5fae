"""How much of the archive a search reads: the newest matches are ranked, and a phrase or NEAR query
checks word positions in a bounded number of the newest articles that hold its words (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from mediabeat.crawler.urls import url_hash
from mediabeat.db import migrate
from mediabeat.db.engine import Database, sync_url
from mediabeat.db.stores import search as search_store
from mediabeat.db.stores.articles import ArticleStore, NewArticle
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.stores.search import SearchStore, band_index
from mediabeat.domain.search import plain_snippet
from mediabeat.search.query import parse_query
from mediabeat.services.search import SearchService

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _article(org_id: int, i: int, text: str) -> NewArticle:
    url = f"https://harbour.test/{i}"
    return NewArticle(
        org_id=org_id,
        feed_id=None,
        url=url,
        url_hash=url_hash(url),
        canonical_url=None,
        title=f"Report {i}",
        author=None,
        published_at=NOW - timedelta(hours=100 - i),
        summary=None,
        text=text,
        language="en",
    )


async def _seed(db: Database, texts: list[str]) -> tuple[int, list[int]]:
    """An organisation with one article per text, oldest first (ids ascending), and a rival org's copy of each."""
    orgs = OrgStore(db)
    org = (await orgs.create("newsroom", now=NOW)).id
    rival = (await orgs.create("rival", now=NOW)).id
    store = ArticleStore(db)
    ids = []
    for i, text in enumerate(texts):
        ids.append(await store.save(_article(org, i, text), now=NOW))
        await store.save(_article(rival, 1000 + i, text), now=NOW)
    return org, ids


def _walked_windows(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, bool]]:
    """Each PostgreSQL walk window from now on, as (low id, high id, bounded by the primary key's bitmap)."""
    windows: list[tuple[int, int, bool]] = []
    window = SearchStore._window

    def spy(
        self: SearchStore, query: Any, org_id: Any, feed_id: Any, ids: tuple[int, int], *rest: Any, **named: Any
    ) -> Any:
        windows.append((*ids, rest[1]))
        return window(self, query, org_id, feed_id, ids, *rest, **named)

    monkeypatch.setattr(SearchStore, "_window", spy)
    return windows


def _checks(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    monkeypatch.setattr(search_store, "POSITION_CHECKS", n)
    monkeypatch.setattr(search_store, "POSTGRES_POSITION_CHECKS", n)


async def _ids(db: Database, q: str, org: int, limit: int = 100, collapse: bool = False) -> list[int]:
    hits = await SearchStore(db).search(parse_query(q), org_id=org, limit=limit, collapse=collapse)
    return [h.id for h in hits]


async def test_narrow_windows_find_the_same_matches(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [("harbour crane" if i % 3 == 0 else "quiet day") + f" number {i}" for i in range(40)]
    org, ids = await _seed(db, texts)
    expected = {ids[i] for i in range(40) if i % 3 == 0}
    wide = set(await _ids(db, "harbour", org))
    monkeypatch.setattr(search_store, "FIRST_WINDOW", 1)
    monkeypatch.setattr(search_store, "MAX_GROWTH", 2)
    assert wide == expected
    assert set(await _ids(db, "harbour", org)) == expected
    assert set(await _ids(db, '"harbour crane"', org)) == expected
    assert set(await _ids(db, "crane NEAR/0 harbour -quiet", org)) == expected
    assert set(await _ids(db, "harbour", org, collapse=True)) == expected


async def test_only_the_newest_matches_are_ranked(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [f"harbour crane number {i}" for i in range(12)]
    org, ids = await _seed(db, texts)
    monkeypatch.setattr(search_store, "RANK_CANDIDATES", 4)
    monkeypatch.setattr(search_store, "FIRST_WINDOW", 2)
    assert set(await _ids(db, "harbour", org)) == set(ids[-4:])
    assert set(await _ids(db, '"harbour crane"', org)) == set(ids[-4:])


async def test_positions_are_checked_in_the_newest_articles_holding_the_words(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The oldest article has the phrase; the five newer ones have both words, far apart.
    texts = ["the harbour crane fell", *[f"a crane came to the old harbour, report {i}" for i in range(5)]]
    org, ids = await _seed(db, texts)
    assert await _ids(db, '"harbour crane"', org) == [ids[0]]
    assert await _ids(db, "harbour NEAR/0 crane", org) == [ids[0]]
    # An excluded phrase is checked exactly, not by its words.
    assert set(await _ids(db, 'crane -"harbour crane"', org)) == set(ids[1:])
    # The bound counts the organisation's articles: SQLite counts the archive's first (the index alone
    # answers that, here the rival's copy of each text too), then, with the page short, the organisation's.
    bound = 6
    _checks(monkeypatch, bound - 1)
    assert await _ids(db, '"harbour crane"', org) == []
    assert await _ids(db, "harbour NEAR/0 crane", org) == []
    _checks(monkeypatch, bound)
    assert await _ids(db, '"harbour crane"', org) == [ids[0]]
    # Words without positions are not bounded by it.
    _checks(monkeypatch, 1)
    assert set(await _ids(db, "harbour crane", org)) == set(ids)


async def test_a_small_organisation_checks_its_own_newest_articles(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Our one phrase match is older than a large rival's many articles that hold both words: the
    # archive-wide floor lies above it, so the short page is searched again from our own floor.
    orgs = OrgStore(db)
    org = (await orgs.create("small desk", now=NOW)).id
    rival = (await orgs.create("big wire", now=NOW)).id
    store = ArticleStore(db)
    ours = await store.save(_article(org, 0, "the harbour crane fell"), now=NOW)
    for i in range(1, 30):
        await store.save(_article(rival, i, f"a crane came to the old harbour, report {i}"), now=NOW)
    _checks(monkeypatch, 5)
    assert await _ids(db, '"harbour crane"', org) == [ours]
    assert await _ids(db, "harbour NEAR/0 crane", org) == [ours]
    assert await _ids(db, '"harbour crane"', rival) == []


async def test_near_and_phrase_snippets_mark_the_words(db: Database) -> None:
    org, _ = await _seed(db, ["far away, then the harbour crane fell into the water"])
    for q in ("harbour NEAR/2 crane", '"harbour crane"'):
        (hit,) = await SearchStore(db).search(parse_query(q), org_id=org, limit=5)
        text, spans = plain_snippet(hit.snippet)
        marked = {word for start, end in spans for word in text[start:end].lower().split()}
        assert marked == {"harbour", "crane"}, q


async def test_an_export_checks_every_position_in_narrow_windows(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every third article has the phrase; the others have both words apart. An export is exact:
    # the position bound and the window widths of a search do not limit it.
    texts = [("harbour crane" if i % 3 == 0 else "crane at the harbour") + f" {i}" for i in range(30)]
    org, ids = await _seed(db, texts)
    _checks(monkeypatch, 1)
    monkeypatch.setattr(search_store, "FIRST_WINDOW", 1)
    monkeypatch.setattr(search_store, "MAX_GROWTH", 2)
    for q, expected in [
        ('"harbour crane"', [ids[i] for i in range(30) if i % 3 == 0]),
        ("harbour NEAR/0 crane", [ids[i] for i in range(30) if i % 3 == 0]),
        ("crane -harbourside", ids),
    ]:
        exported: list[int] = []
        before: int | None = None
        while page := await SearchStore(db).export_page(parse_query(q), org_id=org, before_id=before, limit=4):
            exported += [int(r["id"]) for r in page]
            before = exported[-1]
        assert exported == sorted(expected, reverse=True), q


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_walk_by_primary_key_finds_what_the_index_finds(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # Words in most articles are read down the primary key (PostgreSQL); the walk goes on in GIN
    # windows when the first one finds too few. Both find exactly what the index alone finds.
    texts = [("harbour crane" if i % 3 == 0 else "quiet harbour day") + f" number {i}" for i in range(40)]
    org, ids = await _seed(db, texts)
    queries = {
        "harbour": set(ids),
        '"harbour crane"': {ids[i] for i in range(40) if i % 3 == 0},
        "crane NEAR/0 harbour -quiet": {ids[i] for i in range(40) if i % 3 == 0},
        "harbour -crane": {ids[i] for i in range(40) if i % 3 != 0},
    }
    monkeypatch.setattr(search_store, "FIRST_WINDOW", 1)  # windows narrower than the archive
    walks: list[bool] = []
    choose = SearchStore._first_window

    async def spy(self: SearchStore, *args: object) -> tuple[int, bool, float]:
        width, by_key, read = await choose(self, *args)  # type: ignore[arg-type]
        walks.append(by_key)
        return width, by_key, read

    monkeypatch.setattr(SearchStore, "_first_window", spy)
    for q, expected in queries.items():
        assert set(await _ids(db, q, org)) == expected, q
    assert walks and not any(walks)  # a few rows: the GIN index is cheaper
    walks.clear()
    monkeypatch.setattr(search_store, "ROW_COST", 0.0)  # every first window by key
    for q, expected in queries.items():
        assert set(await _ids(db, q, org)) == expected, q
    assert walks and all(walks)
    # A first window too narrow for the matches wanted: the walk goes on in GIN windows below it.
    monkeypatch.setattr(SearchStore, "_first_window", lambda *_: _narrow_key_window())
    for q, expected in queries.items():
        assert set(await _ids(db, q, org)) == expected, q


async def _narrow_key_window() -> tuple[int, bool, float]:
    return 3, True, 1.0


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_the_walk_is_chosen_from_the_word_statistics(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [f"harbour report number {i}" + (" crane" if i == 7 else "") for i in range(80)]
    org, ids = await _seed(db, texts)
    async with db.write() as conn:
        await conn.execute(sa.text("ANALYZE articles"))
    monkeypatch.setattr(search_store, "ROW_COST", 0.5)  # the tipping point scaled to 160 articles
    monkeypatch.setattr(search_store, "FIRST_WINDOW", 1)  # windows narrower than the archive
    store = SearchStore(db)
    walk = search_store._Walk(search_store.RANK_CANDIDATES, search_store.POSTGRES_POSITION_CHECKS)
    async with db.read() as conn:
        high = int((await conn.execute(sa.text("SELECT max(id) + 1 FROM articles"))).scalar_one())
        common = await store._first_window(conn, parse_query("harbour"), high, walk)
        rare = await store._first_window(conn, parse_query("crane"), high, walk)
    assert common[1] is True  # in every article: walked by key
    assert rare[1] is False  # in two: through the index, with a first window wider than FIRST_WINDOW's share
    assert rare[0] > 1  # wider than the narrowest window, from the estimate
    # A window as wide as the archive leaves nothing to choose: the statistics are not read.
    monkeypatch.setattr(search_store, "FIRST_WINDOW", high)
    async with db.read() as conn:
        assert await store._first_window(conn, parse_query("harbour"), high, walk) == (high, False, 0.0)
    assert set(await _ids(db, "harbour", org)) == set(ids)
    assert await _ids(db, "crane", org) == [ids[7]]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_an_articles_word_list_is_kept_in_its_row(db: Database) -> None:
    # Ranking reads each candidate's `tsvector` (migration 0032): in its row, not through the TOAST
    # table, which holds the long text alone. 250 distinct random words make both long, the text too
    # long for its row and the vector short enough for one.
    rng = random.Random(5)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(5, 11))) for _ in range(250)]
    org, (article,) = await _seed(db, [" ".join(words)])
    async with db.read() as conn:
        toast = (
            await conn.execute(
                sa.text("SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'articles'::regclass")
            )
        ).scalar_one()
        sizes = (
            await conn.execute(
                sa.text(
                    "SELECT pg_column_size(search_vector) AS vector, pg_column_size(text) AS text "
                    "FROM articles WHERE id = :id"
                ),
                {"id": article},
            )
        ).one()
        stored = (
            await conn.execute(sa.text(f"SELECT sum(length(chunk_data)) FROM {toast} GROUP BY chunk_id"))
        ).scalars()
        out_of_line = [int(size) for size in stored]
    assert sizes.vector > 2000 and sizes.text > 2000
    assert sizes.text in out_of_line  # the text is in the TOAST table
    assert sizes.vector not in out_of_line  # the vector is not
    assert await _ids(db, words[121], org) == [article]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_rare_words_walk_ends_in_one_scan_of_the_rest(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # A word this rare would need the primary key's ids of most of the archive, which cost more than
    # reading its few matches: the rest of its index's segment (here every id) is one GIN scan, its rows
    # filtered by id (PostgreSQL). The word's first window is that scan: its index's rows are read anyway,
    # and the statistics say the walk needs them all. A phrase's first window is not widened on the
    # statistics (each row taken in is checked): its walk reads the rest after it.
    texts = [("zeppelin over " if i % 10 == 0 else "") + f"the quiet harbour {i}" for i in range(60)]
    org, ids = await _seed(db, texts)
    async with db.write() as conn:
        await conn.execute(sa.text("ANALYZE articles"))
    monkeypatch.setattr(search_store, "FIRST_WINDOW", 4)
    windows = _walked_windows(monkeypatch)
    assert set(await _ids(db, "zeppelin", org)) == {ids[i] for i in range(0, 60, 10)}
    top = windows[0][1]
    assert windows == [(1, top, False)]
    windows.clear()
    assert set(await _ids(db, '"zeppelin over"', org)) == {ids[i] for i in range(0, 60, 10)}
    first, rest = windows
    assert 1 < first[0] < top == first[1]
    assert rest == (1, first[0], False)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_the_newest_articles_gin_index_moves_up_and_windows_stop_at_its_floor(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [("zeppelin over " if i % 10 == 0 else "") + f"the quiet harbour {i}" for i in range(60)]
    org, ids = await _seed(db, texts)
    store = SearchStore(db)

    async def state() -> tuple[int, list[str]]:
        async with db.read() as conn:
            floor = (await conn.execute(sa.text("SELECT id FROM articles_search_recent_floor"))).scalar_one()
            sql = "SELECT indexdef FROM pg_indexes WHERE indexname LIKE 'ix_articles_search_recent%'"
            return int(floor), [str(d) for d in (await conn.execute(sa.text(sql))).scalars()]

    # Migration 0034 on an empty archive: the index covers every id, and a walk has nothing to split off.
    floor, definitions = await state()
    assert floor == 1 and len(definitions) == 1 and "WHERE (id >= 1)" in definitions[0]
    before = {q: await _ids(db, q, org) for q in ("zeppelin", '"zeppelin over"', "harbour")}
    assert set(before["zeppelin"]) == {ids[i] for i in range(0, 60, 10)}

    monkeypatch.setattr(search_store, "RECENT_IDS", 10)
    async with db.read() as conn:
        top = int((await conn.execute(sa.text("SELECT max(id) + 1 FROM articles"))).scalar_one())
    # While another process rebuilds it (holding the lock), this one leaves it alone.
    async with db.read() as other:
        await other.execute(sa.select(sa.func.pg_advisory_lock(search_store.RECENT_LOCK)))
        assert await store.refresh_recent_index() is None
        await other.execute(sa.select(sa.func.pg_advisory_unlock(search_store.RECENT_LOCK)))
    assert (await state())[0] == 1
    assert await store.refresh_recent_index() == top - 10
    floor, definitions = await state()
    assert floor == top - 10 and len(definitions) == 1
    assert f"WHERE (id >= {floor})" in definitions[0] and "ix_articles_search_recent " in definitions[0]
    assert await store.refresh_recent_index() is None  # it holds the newest ten ids: not due again

    windows = _walked_windows(monkeypatch)
    for q, found in before.items():
        assert await _ids(db, q, org) == found, q
    # Every walk stops a window at the floor, and goes on below it.
    assert any(low == floor for low, _, _ in windows) and any(high == floor for _, high, _ in windows)
    assert all(not low < floor < high for low, high, _ in windows)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_sparse_phrase_of_common_words_reads_no_more_holders_than_it_checks(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every article holds both words, far apart; only the oldest two hold the phrase. The windows' bitmap
    # scans read every holder in them, whatever their LIMIT: they must not grow past the checks left.
    texts = ["the harbour crane fell"] * 2 + [f"a crane came to the old harbour, report {i}" for i in range(150)]
    org, ids = await _seed(db, texts)
    checks = 20
    _checks(monkeypatch, checks)
    monkeypatch.setattr(search_store, "FIRST_WINDOW", 4)
    windows = _walked_windows(monkeypatch)
    assert await _ids(db, '"harbour crane"', org) == []  # beyond the newest 20 holders
    read = [sum(1 for i in ids if low <= i < high) for low, high, _ in windows]
    assert sum(read[:-1]) < checks <= sum(read), (windows, read)
    # The last window is no wider than the checks left need, a quarter more for the density's noise.
    assert read[-1] <= (checks - sum(read[:-1])) * 1.25 + 1, (windows, read)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_the_ids_the_newest_index_leaves_become_a_band_with_an_index_of_its_own(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [("zeppelin over " if i % 10 == 0 else "") + f"the quiet harbour {i}" for i in range(60)]
    org, _ = await _seed(db, texts)
    store = SearchStore(db)
    expected = {q: set(await _ids(db, q, org)) for q in ("zeppelin", '"zeppelin over"', "harbour", "quiet -zeppelin")}

    async def bands() -> list[tuple[int, int, str]]:
        async with db.read() as conn:
            listed = (await conn.execute(sa.text("SELECT low, high FROM articles_search_bands ORDER BY low"))).all()
            sql = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
            return [
                (int(low), int(high), str((await conn.execute(sa.text(sql), {"name": band_index(low)})).scalar_one()))
                for low, high in listed
            ]

    assert await bands() == []  # migration 0036 on an empty archive: nothing below the floor
    monkeypatch.setattr(search_store, "RECENT_IDS", 10)
    first = await store.refresh_recent_index()
    assert first is not None
    ((low, high, definition),) = await bands()
    assert (low, high) == (1, first)
    assert f"WHERE ((id >= 1) AND (id < {first}))" in definition
    # More articles: the next move leaves the ids between the two floors to a second band.
    more = [await ArticleStore(db).save(_article(org, 200 + i, f"zeppelin late {i}"), now=NOW) for i in range(25)]
    second = await store.refresh_recent_index()
    assert second is not None and second > first
    assert [(low, high) for low, high, _ in await bands()] == [(1, first), (first, second)]

    expected["zeppelin"] |= set(more)
    windows = _walked_windows(monkeypatch)
    rests: list[list[tuple[int, int | None]]] = []
    window = SearchStore._window

    def rest_spy(self: SearchStore, *args: Any, rest: Any = (), **named: Any) -> Any:
        rests.append([(part.low, part.high) for part in rest])
        return window(self, *args, rest=rest, **named)

    monkeypatch.setattr(SearchStore, "_window", rest_spy)
    for q, found in expected.items():
        assert set(await _ids(db, q, org)) == found, q
    # No window crosses a band's bound; the bands below one are read whole, each in its own part.
    bounds = {1, first, second}
    assert windows and all(not any(low < b < high for b in bounds) for low, high, _ in windows)
    # A rare word's few rows below its first window cost less than a statement per band: one reads them all.
    assert [(1, first)] in rests or [(first, second), (1, first)] in rests, rests


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_window_inside_a_band_is_planned_on_its_index(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [f"the quiet harbour {i}" for i in range(60)]
    await _seed(db, texts)
    store = SearchStore(db)
    monkeypatch.setattr(search_store, "RECENT_IDS", 10)
    floor = await store.refresh_recent_index()
    assert floor is not None
    # Every organisation's (the org_id index aside): which GIN index serves the words is the question.
    band = search_store._Segment(1, floor)
    async with db.read() as conn:
        await conn.execute(sa.text("ANALYZE articles"))
        await SearchStore._settings(conn, search_store._CANDIDATE_SETTINGS)
        for keyed in (True, False):
            window = store._window(parse_query("harbour"), None, None, (5, floor), band, keyed, 100, scored=True)
            compiled = window.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
            plan = "\n".join((await conn.execute(sa.text(f"EXPLAIN {compiled}"))).scalars())
            assert band_index(1) in plan, plan
            if not keyed:
                assert "pk_articles" not in plan, plan  # the window's ids filter the rows the band's index finds


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_migration_0036_indexes_the_archive_below_the_floor_in_bands(database_url: str) -> None:
    engine = sa.create_engine(sync_url(database_url))
    with engine.connect() as conn:
        config = migrate.alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0035")
        # An archive whose newest ids' index starts at id 250,001 (the bands need no rows to be built).
        conn.execute(sa.text("UPDATE articles_search_recent_floor SET id = 250001"))
        conn.commit()
    engine.dispose()
    migrate.upgrade(database_url)
    engine = sa.create_engine(sync_url(database_url))
    with engine.connect() as conn:
        listed = conn.execute(sa.text("SELECT low, high FROM articles_search_bands ORDER BY low")).all()
        names = set(conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'articles'")).scalars())
    engine.dispose()
    assert [tuple(r) for r in listed] == [(1, 100001), (100001, 200001), (200001, 250001)]
    assert {band_index(1), band_index(100001), band_index(200001)} <= names
    assert "ix_articles_search_vector" not in names  # the bands and the newest ids' index cover every id


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_an_export_page_reads_the_rows_its_matches_need_not_the_whole_archive(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An export checks every position (no bound), so its walk is bounded by the matches a page wants:
    # a page of 4 phrase matches, each third article one of them, reads a few windows' rows, not all 300.
    texts = [("harbour crane" if i % 3 == 0 else "crane at the harbour") + f" {i}" for i in range(150)]
    org, ids = await _seed(db, texts)
    monkeypatch.setattr(search_store, "FIRST_WINDOW", 8)
    windows = _walked_windows(monkeypatch)
    page = await SearchStore(db).export_page(parse_query('"harbour crane"'), org_id=org, before_id=None, limit=4)
    assert [int(r["id"]) for r in page] == [ids[i] for i in range(149, -1, -1) if i % 3 == 0][:4]
    lowest = min(low for low, _, _ in windows)
    assert sum(1 for i in ids if i >= lowest) < 60, windows  # of the organisation's 150


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_walk_window_is_planned_for_its_own_words_however_often_it_runs(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window's statement differs between searches only in its words, which are bound parameters: after five
    runs on one connection PostgreSQL may plan it once for any words (a generic plan), blind to how many
    articles hold them. At 1,000,000 articles such a plan made a NEAR window 7 times slower (112 ms; 16 planned
    for its words). The walk plans each statement for its words, and the session gets its setting back."""
    org, _ = await _seed(db, [f"the quiet harbour {i}" for i in range(30)])
    modes: list[str] = []
    walk = SearchStore._walk_windows

    async def spy(self: SearchStore, conn: Any, *args: Any, **named: Any) -> Any:
        modes.append((await conn.execute(sa.text("SHOW plan_cache_mode"))).scalar_one())
        return await walk(self, conn, *args, **named)

    monkeypatch.setattr(SearchStore, "_walk_windows", spy)
    async with db.read() as conn:
        before = (await conn.execute(sa.text("SHOW plan_cache_mode"))).scalar_one()
    assert len(await _ids(db, "harbour", org)) == 30
    assert len(await _ids(db, '"quiet harbour"', org)) == 30
    assert modes == ["force_custom_plan", "force_custom_plan"]
    async with db.read() as conn:
        assert (await conn.execute(sa.text("SHOW plan_cache_mode"))).scalar_one() == before == "auto"


def test_a_walk_reads_the_bands_its_matches_need_not_every_band_below() -> None:
    # `(deine OR haben) they -wieviel` at 1,000,000 articles: 1,655 matches still wanted (2,069 rows with the
    # quarter more) at 345 rows a band of 100,000 ids below the newest ids' floor. Reading all nine bands read
    # 3,232 rows and nine posting lists (35 ms); the five newest hold what is needed (21 ms).
    bounds = [1 + 100_000 * i for i in range(10)]
    reach = SearchStore._reach(bounds, 900_001, 345 / 100_000, 2_069, positional=False)
    assert reach == 400_001
    # A rare word's rest, all of it needed, is still one statement down to the first id.
    assert SearchStore._reach(bounds, 900_001, 12 / 100_000, 2_000, positional=False) == 1


def test_a_window_short_of_the_rows_it_needs_takes_in_the_rest_of_its_segment() -> None:
    # A first window, capped at 64,000 ids, over the newest 100,000 ids' index, which a bitmap scan reads
    # whole whatever the window: when the walk would go on into the rest of the segment (the window holds
    # fewer rows than needed) the window takes it in, rather than the next window reading the index again.
    bounds, floor, ids = [1, 900_001], 900_001, (1_000_001, 1_000_001)
    low, segment, keyed, rest = SearchStore._place(bounds, floor, ids, 64_000, 0.03, False, None, 2_000.0, False)
    assert (low, segment, keyed, rest) == (900_001, search_store._Segment(900_001, None), False, [])
    # Not when the segment holds many times what is needed: its rows would all be scored for nothing.
    low, *_ = SearchStore._place(bounds, floor, ids, 64_000, 0.03, False, None, 1_000.0, False)
    assert low == 1_000_001 - 64_000
    # Nor for a phrase or NEAR, each of whose rows taken in is checked.
    low, *_ = SearchStore._place(bounds, floor, ids, 64_000, 0.03, False, None, 2_000.0, True)
    assert low == 1_000_001 - 64_000


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_keyed_window_ands_its_bands_index_with_the_primary_key(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A window of a third of a band whose articles hold the word one in ten: the band's index and the
    # primary key's bitmap of the window's ids, ANDed, so that only the window's rows are read from the heap.
    # Each copy has 80 words of its own, so that its `tsvector` fills half a page as a real article's does
    # (with rows many to a page, the planner rightly reads them all). A window whose conditions repeated
    # its band's index condition never had the primary key, whatever reading the heap cost.
    org, _ = await _seed(db, [("zeppelin over " if i % 10 == 0 else "") + f"the quiet harbour {i}" for i in range(30)])
    async with db.write() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO articles (org_id, url, url_hash, title, text, language, published_at, fetched_at, "
                "created_at) SELECT org_id, url || '?copy=' || g, md5(url || '?copy=' || g), title, text || ' ' || "
                "(SELECT string_agg(md5(url || g || '-' || w), ' ') FROM generate_series(1, 80) AS w), language, "
                "published_at, fetched_at, created_at FROM articles, generate_series(1, 100) AS g WHERE org_id = :org"
            ).bindparams(org=org)
        )
    store = SearchStore(db)
    monkeypatch.setattr(search_store, "RECENT_IDS", 10)
    floor = await store.refresh_recent_index()
    assert floor is not None and floor > 3_000
    band = search_store._Segment(1, floor)
    async with db.read() as conn:
        await conn.execute(sa.text("ANALYZE articles"))
        await SearchStore._settings(conn, search_store._CANDIDATE_SETTINGS)
        for ids in ((1_000, 2_000), (1, 1_000), (floor - 1_000, floor)):  # inside, and at either bound of the band
            window = store._window(parse_query("zeppelin"), org, None, ids, band, True, 100, scored=True)
            compiled = window.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
            plan = "\n".join((await conn.execute(sa.text(f"EXPLAIN {compiled}"))).scalars())
            assert "BitmapAnd" in plan and band_index(1) in plan and "pk_articles" in plan, plan


def test_a_phrase_walk_grows_its_windows_no_wider_than_its_matches_and_checks_need() -> None:
    # `Und NEAR/5 ich`: 1,560 matches in the first 16,700 ids, 440 still wanted (4,400 ids at that density,
    # with the quarter more), 1,400 checks left at 0.217 holders an id (8,065 ids).
    assert SearchStore._next_width(16_700, 4_400.0, 0.217, 1_400) == 4_400
    assert SearchStore._next_width(16_700, 90_000.0, 0.217, 1_400) == 8_065  # the checks left bound it
    # Words: at least twice as wide (every match in a window is wanted, and a window costs a statement).
    assert SearchStore._next_width(16_700, 4_400.0, 0.217, None) == 33_400
    assert SearchStore._next_width(1_000, 90_000.0, 0.2, None) == 1_000 * search_store.MAX_GROWTH


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_window_checks_each_rows_positions_once(db: Database) -> None:
    # The check's result is what the score's CASE asks too: written twice, PostgreSQL ran it twice per row.
    await _seed(db, ["the harbour crane fell", "a crane in the harbour"])
    store = SearchStore(db)
    segment = search_store._Segment(1, None)
    for q in ('"harbour crane"', "harbour NEAR/3 crane"):
        window = store._window(parse_query(q), None, None, (1, 100), segment, False, 100, scored=True)
        compiled = str(window.compile(compile_kwargs={"literal_binds": True}))
        assert compiled.count("search_vector @@") == 2, compiled  # the index's words, and the positions
    async with db.read() as conn:
        rows = (
            await conn.execute(
                store._window(parse_query('"harbour crane"'), None, None, (1, 100), segment, False, 100, scored=True)
            )
        ).all()
    # The two articles (of each organisation) holding the phrase, scored, then the count of the four checked.
    matches, (last,) = [r for r in rows if r.id is not None], [r for r in rows if r.id is None]
    assert len(matches) == 2 and all(r.score > 0 for r in matches) and last.score == 4


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_phrase_of_words_in_more_articles_than_it_checks_is_sized_for_its_checks(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every other article holds both words: its first window is as wide as its 20 checks need, at TOGETHER
    # times the estimated holders and without the quarter more, since every holder in a window is checked.
    await _seed(db, [("a crane came to the old harbour" if i % 2 else "quiet") + f", report {i}" for i in range(60)])
    async with db.write() as conn:
        await conn.execute(sa.text("ANALYZE articles"))
    monkeypatch.setattr(search_store, "FIRST_WINDOW", 1)
    monkeypatch.setattr(search_store, "MAX_GROWTH", 1_000)  # the estimate alone sizes the windows
    monkeypatch.setattr(search_store, "ROW_COST", 1e9)  # through the GIN index, not by key
    store = SearchStore(db)
    walk = search_store._Walk(search_store.RANK_CANDIDATES, 20)
    async with db.read() as conn:
        high = int((await conn.execute(sa.text("SELECT max(id) + 1 FROM articles"))).scalar_one())
        width, by_key, density = await store._first_window(conn, parse_query('"harbour crane"'), high, walk)
        words, _, _ = await store._first_window(conn, parse_query("harbour crane"), high, walk)
    assert not by_key and 0 < density < 1 / search_store.TOGETHER
    assert width == int(20 / (density * search_store.TOGETHER)) + 1
    assert words > width  # words: every match in a window is wanted, a quarter more for the noise


def test_a_page_is_ranked_by_the_rounded_score_then_newest() -> None:
    # 0.1234 and 0.1231 are one rank at three decimals: the newer (higher id) comes first, whatever its score.
    scored = [(5, 0.1234), (9, 0.1231), (7, 0.2), (3, 0.1229), (8, 0.05)]
    assert search_store.ranked_page(scored, 2, 0) == [(7, 0.2), (9, 0.1231)]
    assert search_store.ranked_page(scored, 2, 2) == [(5, 0.1234), (3, 0.1229)]
    assert search_store.ranked_page(scored, 10, 4) == [(8, 0.05)]
    assert search_store.ranked_page(scored, 0, 0) == [] and search_store.ranked_page([], 20, 0) == []
    # A `real` as the driver reads it (its shortest form): its six significant digits are PostgreSQL's.
    assert str(search_store.rank_key(2.757495)) == "2.757"  # the float4 is 2.7574949..., not 2.7575
    assert str(search_store.rank_key(2.351495)) == "2.352"  # 2.3514950... rounds half away from zero


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_page_ranked_in_python_is_the_page_postgresql_ranks(db: Database) -> None:
    # 3,000 `real` scores, many tied at three decimals, ranked by PostgreSQL as SearchStore._ranked does.
    async with db.read() as conn:
        scored = [
            (int(i), float(score))
            for i, score in await conn.execute(
                sa.text(
                    "SELECT g, CAST(round(CAST(random() * 3 AS numeric), 4) + random() / 1e4 AS real) "
                    "FROM generate_series(1, 3000) AS g"
                )
            )
        ]
        ids, scores = ",".join(str(i) for i, _ in scored), ",".join(repr(s) for _, s in scored)
        ranked = [
            (int(i), float(score))
            for i, score in await conn.execute(
                sa.text(
                    f"SELECT id, score FROM unnest(CAST('{{{ids}}}' AS bigint[]), CAST('{{{scores}}}' AS real[])) "
                    f"AS c (id, score) ORDER BY round(CAST(score AS numeric), {search_store.SCORE_DIGITS}) DESC, "
                    "id DESC"
                )
            )
        ]
    assert len({search_store.rank_key(s) for _, s in scored}) < len(scored)  # ties to break
    for limit, offset in ((20, 0), (20, 20), (7, 13), (50, 2_960), (3_000, 0)):
        assert search_store.ranked_page(scored, limit, offset) == ranked[offset : offset + limit], (limit, offset)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_search_upkeep_sizes_postgresqls_cache_against_the_newest_articles(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed(db, [f"the quiet harbour {i}" for i in range(30)])
    store = SearchStore(db)
    done = await store.upkeep()
    async with db.read() as conn:
        shared, index = (
            await conn.execute(
                sa.text(
                    "SELECT pg_size_bytes(current_setting('shared_buffers')), "
                    "pg_relation_size('ix_articles_search_recent')"
                )
            )
        ).one()
    assert done["search_shared_buffers_bytes"] == shared
    assert done["search_newest_bytes"] > index > 0  # the index, and the newest rows' share of the table
    # The message says so when the cache is the smaller (as with 128 MB at a million articles).
    service = SearchService(store=store)
    _, said = await service.upkeep()
    assert "shared_buffers" not in said  # a test database fits
    monkeypatch.setattr(store, "upkeep", _small_cache)
    _, said = await service.upkeep()
    assert said.startswith("the newest articles' search index was left as it is") and "shared_buffers (1 MB)" in said


async def _small_cache() -> dict[str, Any]:
    return {"search_recent_index_floor": None, "search_shared_buffers_bytes": 2**20, "search_newest_bytes": 2**30}
