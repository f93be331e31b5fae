"""An article's date and language, fetched over real HTTP on loopback, on both databases.

The date comes from the page's markup, else from its feed entry (carried on the crawl job),
else from htmldate's search of the text; the language from the text, else `<html lang>`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from mediabeat.clock import FakeClock
from mediabeat.crawler.urls import canonicalize, url_hash
from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import JobStore, NewJob
from mediabeat.db.stores.orgs import OrgStore
from tests.crawler_helpers import ctx, handlers
from tests.loopback import LoopbackServer, Route

START = datetime(2026, 1, 3, 9, 0, 30, tzinfo=UTC)
ENGLISH = "<p>The council met on Tuesday to discuss the new budget for the harbour, and members argued for hours.</p>"
GERMAN = "<p>Der Stadtrat hat am Dienstag über den neuen Haushalt für den Hafen beraten und lange gestritten.</p>"
FRENCH = "<p>Le conseil municipal s'est réuni mardi pour discuter du nouveau budget du port, et le débat a duré.</p>"
PORTUGUESE = "<p>A câmara municipal reuniu-se na terça-feira para discutir o novo orçamento do porto da cidade.</p>"


def page(body: str, *, head: str = "", lang: str | None = "en") -> Route:
    declared = f" lang='{lang}'" if lang else ""
    html = f"<html{declared}><head><title>Story</title>{head}</head><body><article><h1>Story</h1>{body}</article>"
    return Route(body=f"{html}</body></html>".encode(), headers={"Content-Type": "text/html; charset=utf-8"})


@pytest.fixture
async def org_id(db: Database) -> AsyncIterator[int]:
    yield (await OrgStore(db).create("newsroom", now=START)).id


async def test_the_date_falls_back_from_the_page_to_the_feed_entry_to_the_text(
    db: Database, site: LoopbackServer, org_id: int
) -> None:
    site.routes["/robots.txt"] = Route(status=404)
    stated = "<meta property='article:published_time' content='2025-05-01T08:00:00Z'>"
    site.routes["/stated.html"] = page(ENGLISH * 6, head=stated)
    site.routes["/undated.html"] = page(ENGLISH * 6)
    site.routes["/in-text.html"] = page(ENGLISH * 6 + "<div>12 March 2024</div>")
    items = (
        "".join(
            f"<item><link>{site.url(path)}</link><pubDate>Fri, 02 Jan 2026 07:30:00 GMT</pubDate></item>"
            for path in ("/stated.html", "/undated.html")
        )
        + f"<item><link>{site.url('/in-text.html')}</link></item>"
    )
    feed = f'<rss version="2.0"><channel><title>News</title>{items}</channel></rss>'
    site.routes["/feed.xml"] = Route(body=feed.encode(), headers={"Content-Type": "application/rss+xml"})
    await FeedStore(db).add_many(org_id, [(site.url("/feed.xml"), None)], now=START)
    fetch, crawl = handlers(db, FakeClock(START))
    try:
        assert (await fetch(ctx(START)))["jobs_created"] == 3
        jobs = {j.url: j.feed_published_at for j in await JobStore(db).list_jobs(limit=10)}
        feed_date = datetime(2026, 1, 2, 7, 30, tzinfo=UTC)
        assert jobs == {
            canonicalize(site.url("/stated.html")): feed_date,
            canonicalize(site.url("/undated.html")): feed_date,
            canonicalize(site.url("/in-text.html")): None,
        }
        assert (await crawl(ctx(START)))["succeeded"] == 3
    finally:
        await crawl.aclose()
    dates = {a.url.rsplit("/", 1)[-1]: a.published_at for a in await ArticleStore(db).list(org_id=org_id, limit=10)}
    assert dates == {
        "stated.html": datetime(2025, 5, 1, tzinfo=UTC),  # the page's own date beats its feed's
        "undated.html": feed_date,
        "in-text.html": datetime(2024, 3, 12, tzinfo=UTC),  # neither states one: found in the text
    }


async def test_the_language_is_the_one_the_text_is_in(db: Database, site: LoopbackServer, org_id: int) -> None:
    site.routes["/robots.txt"] = Route(status=404)
    site.routes["/mislabelled.html"] = page(GERMAN * 6, lang="en")  # a template's lang, not the text's
    site.routes["/unlabelled.html"] = page(FRENCH * 6, lang=None)
    site.routes["/regional.html"] = page(PORTUGUESE * 6, lang="pt-BR")  # agrees: the region is kept
    site.routes["/english.html"] = page(ENGLISH * 6, lang="en")
    urls = [site.url(f"/{name}.html") for name in ("mislabelled", "unlabelled", "regional", "english")]
    await JobStore(db).enqueue([NewJob(org_id, None, u, url_hash(u)) for u in urls], now=START)
    _fetch, crawl = handlers(db, FakeClock(START))
    try:
        assert (await crawl(ctx(START)))["succeeded"] == 4
    finally:
        await crawl.aclose()
    languages = {a.url.rsplit("/", 1)[-1]: a.language for a in await ArticleStore(db).list(org_id=org_id, limit=10)}
    assert languages == {
        "mislabelled.html": "de",
        "unlabelled.html": "fr",
        "regional.html": "pt-br",
        "english.html": "en",
    }
