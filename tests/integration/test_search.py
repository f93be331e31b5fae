"""Full-text search on a real database (SQLite FTS5 and PostgreSQL tsvector): the query language end to end."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediabeat.crawler.urls import url_hash
from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore, NewArticle
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.stores.search import SearchStore
from mediabeat.domain.content import OrgNotFound
from mediabeat.domain.search import ADMIN_READER, HIGHLIGHT_END, HIGHLIGHT_START, BadQuery, Reader, plain_snippet
from mediabeat.search.match import Document, compile_matcher
from mediabeat.search.query import QueryError, parse_query
from mediabeat.services.search import SearchService

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)

APRIL = [datetime(2026, 4, day, tzinfo=UTC) for day in range(1, 6)]
ARTICLES = [
    # (title, text, url, language, published)
    (
        "Climate summit opens in Bonn",
        "The climate change summit opened on Monday with talks on coal.",
        "https://www.bbc.co.uk/news/1",
        "en",
        APRIL[0],
    ),
    (
        "Élection présidentielle",
        "Le débat sur la réforme des retraites a eu lieu hier soir.",
        "https://lemonde.fr/politique/2",
        "fr",
        APRIL[1],
    ),
    (
        "Coal plants close",
        "Germany closes coal plants early, the ministry said on Tuesday.",
        "https://news.example.com/3",
        "en",
        APRIL[2],
    ),
    (
        "Election results",
        "The election went to a second round after a close vote in the north.",
        "https://example.com/4",
        "en-GB",
        APRIL[3],
    ),
    (
        "Markets",
        "Shares in electric carmakers rose; climate policy was not mentioned.",
        "https://markets.test/5",
        "en",
        APRIL[4],
    ),
]


def _article(
    org_id: int, feed_id: int | None, title: str, text: str, url: str, lang: str, published: datetime
) -> NewArticle:
    return NewArticle(
        org_id=org_id,
        feed_id=feed_id,
        url=url,
        url_hash=url_hash(url),
        canonical_url=None,
        title=title,
        author=None,
        published_at=published,
        summary=None,
        text=text,
        language=lang,
    )


async def seed(db: Database) -> tuple[int, int, list[int]]:
    orgs = OrgStore(db)
    a = await orgs.create("newsroom", now=NOW)
    b = await orgs.create("rival", now=NOW)
    feed, _ = await FeedStore(db).add(a.id, "https://www.bbc.co.uk/feed.xml", now=NOW)
    store = ArticleStore(db)
    ids = await store.save_many(
        [_article(a.id, feed.id if i == 0 else None, *row) for i, row in enumerate(ARTICLES)], now=NOW
    )
    await store.save(
        _article(b.id, None, "Climate elsewhere", "climate change coal", "https://rival.test/1", "en", NOW), now=NOW
    )
    return a.id, b.id, ids


@pytest.fixture
def service(db: Database) -> SearchService:
    return SearchService(store=SearchStore(db))


async def titles(service: SearchService, q: str, org_id: int) -> list[str]:
    return [h.title or "" for h in await service.search(q, reader=ADMIN_READER, org_id=org_id)]


async def test_words_phrases_boolean_prefix_near(db: Database, service: SearchService) -> None:
    org, _, _ = await seed(db)
    assert set(await titles(service, "coal", org)) == {"Climate summit opens in Bonn", "Coal plants close"}
    assert await titles(service, '"climate change summit"', org) == ["Climate summit opens in Bonn"]
    assert await titles(service, '"summit change"', org) == []
    assert await titles(service, "coal -germany", org) == ["Climate summit opens in Bonn"]
    assert set(await titles(service, "germany OR bonn", org)) == {"Climate summit opens in Bonn", "Coal plants close"}
    assert set(await titles(service, "elect*", org)) == {"Élection présidentielle", "Election results", "Markets"}
    assert await titles(service, "election NEAR/7 vote", org) == []
    assert await titles(service, "round NEAR/4 vote", org) == ["Election results"]
    assert await titles(service, "vote NEAR/4 round", org) == ["Election results"]
    assert await titles(service, "round NEAR/2 vote", org) == []
    assert set(await titles(service, "(coal OR retraites) NOT bonn", org)) == {
        "Coal plants close",
        "Élection présidentielle",
    }


async def test_accents_are_folded_both_ways(db: Database, service: SearchService) -> None:
    org, _, _ = await seed(db)
    assert await titles(service, "debat", org) == ["Élection présidentielle"]
    assert await titles(service, "réforme", org) == ["Élection présidentielle"]


async def test_filters(db: Database, service: SearchService) -> None:
    org, _, _ = await seed(db)
    assert await titles(service, "coal site:bbc.co.uk", org) == ["Climate summit opens in Bonn"]
    assert await titles(service, "coal site:example.com", org) == ["Coal plants close"]
    assert await titles(service, "election lang:en", org) == ["Election results"]
    assert await titles(service, "coal since:2026-04-02", org) == ["Coal plants close"]
    assert await titles(service, "coal until:2026-04-01", org) == ["Climate summit opens in Bonn"]
    assert set(await titles(service, "coal (site:bbc.co.uk OR site:example.com)", org)) == {
        "Climate summit opens in Bonn",
        "Coal plants close",
    }
    feed_hit = await service.search("site:bbc.co.uk", reader=ADMIN_READER, org_id=org)
    assert [h.title for h in feed_hit] == ["Climate summit opens in Bonn"]


async def test_ranking_prefers_the_title_and_snippets_mark_matches(db: Database, service: SearchService) -> None:
    org, _, _ = await seed(db)
    store = ArticleStore(db)
    in_title = await store.save(
        _article(org, None, "Zephyr arrives", "a quiet day", "https://z.test/1", "en", NOW), now=NOW
    )
    await store.save(_article(org, None, "Weather", "a zephyr blew in", "https://z.test/2", "en", NOW), now=NOW)
    hits = await service.search("zephyr", reader=ADMIN_READER, org_id=org)
    assert hits[0].id == in_title and hits[0].score > hits[1].score
    text, spans = plain_snippet(hits[0].snippet)
    assert spans and all(text[s:e].lower() == "zephyr" for s, e in spans)
    assert HIGHLIGHT_START not in text and HIGHLIGHT_END not in text


async def test_members_search_their_own_org_only(db: Database, service: SearchService) -> None:
    org, rival, _ = await seed(db)
    member = Reader(is_admin=False, org_id=rival)
    assert [h.title for h in await service.search("climate", reader=member)] == ["Climate elsewhere"]
    with pytest.raises(OrgNotFound):
        await service.search("climate", reader=member, org_id=org)
    assert await service.search("climate", reader=Reader(is_admin=False)) == []
    every = await service.search("climate", reader=ADMIN_READER)
    assert {h.org_id for h in every} == {org, rival}


async def test_articles_are_searchable_when_written_and_updated_and_deleted(
    db: Database, service: SearchService
) -> None:
    org, _, _ = await seed(db)
    store = ArticleStore(db)
    await store.save(_article(org, None, "Fresh", "zeppelin landing", "https://example.com/4", "en", NOW), now=NOW)
    assert await titles(service, "zeppelin", org) == ["Fresh"]
    assert await titles(service, "second round", org) == []  # the old text of that URL is gone from the index


async def test_bad_queries_are_bad_query_with_a_column(db: Database, service: SearchService) -> None:
    await seed(db)
    with pytest.raises(BadQuery) as caught:
        await service.search('climate "change', reader=ADMIN_READER)
    assert caught.value.column == 9 and "unbalanced quote at column 9" in str(caught.value)


async def test_export_streams_every_match_in_pages(
    db: Database, service: SearchService, monkeypatch: pytest.MonkeyPatch
) -> None:
    org, _, ids = await seed(db)
    monkeypatch.setattr("mediabeat.services.search.EXPORT_PAGE", 2)
    rows = [r async for r in service.export("climate OR coal OR election OR elect*", reader=ADMIN_READER, org_id=org)]
    assert [r["id"] for r in rows] == sorted(ids, reverse=True)


async def test_the_index_agrees_with_the_python_matcher(db: Database, service: SearchService) -> None:
    org, _, _ = await seed(db)
    documents = {
        title: Document.from_article(title=title, text=text, url=url, lang=lang, published_at=published)
        for title, text, url, lang, published in ARTICLES
    }
    for q in [
        "coal",
        '"climate change"',
        "elect* -vote",
        "round NEAR/4 vote",
        "coal site:bbc.co.uk",
        "debat OR markets",
    ]:
        matcher = compile_matcher(parse_query(q))
        expected = {t for t, d in documents.items() if matcher(d)}
        assert set(await titles(service, q, org)) == expected, q


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.sampled_from([*'ab"()-*:^ /1é', "NEAR(", " AND ", " OR ", " NOT ", " NEAR/1 "]), max_size=12).map(
        "".join
    )
)
async def test_random_queries_never_reach_the_database_as_syntax(db: Database, source: str) -> None:
    try:
        query = parse_query(source)
    except QueryError:
        return
    await SearchStore(db).search(query, org_id=None, limit=5)


async def test_equal_scores_put_the_newest_first(db: Database, service: SearchService) -> None:
    org = (await OrgStore(db).create("wire", now=NOW)).id
    store = ArticleStore(db)
    ids = [
        await store.save(
            _article(org, None, f"Copy {i}", "the same wire story text", f"https://w.test/{i}", "en", NOW), now=NOW
        )
        for i in range(5)
    ]
    hits = await service.search('"same wire story"', reader=ADMIN_READER, org_id=org)
    assert [h.id for h in hits] == sorted(ids, reverse=True)
