"""A news sitemap index added as a feed: hourly-rss-fetch follows it and queues its news entries, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from mediabeat.clock import FakeClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import JobStore
from mediabeat.db.stores.orgs import OrgStore
from tests.crawler_helpers import ctx, handlers
from tests.loopback import LoopbackServer, Route
from tests.unit.test_sitemaps import index, urlset

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


async def test_a_news_sitemap_index_queues_its_news_entries(db: Database, site: LoopbackServer) -> None:
    site.routes["/sitemap-index.xml"] = Route(
        body=index(site.url("/news-1.xml"), site.url("/news-2.xml"), site.url("/gone.xml"))
    )
    site.routes["/news-1.xml"] = Route(body=urlset(1, 2, plain=5))
    site.routes["/news-2.xml"] = Route(body=urlset(3))
    org = await OrgStore(db).create("newsroom", now=NOW)
    feed, _ = await FeedStore(db).add(org.id, site.url("/sitemap-index.xml"), now=NOW)
    fetch, crawl = handlers(db, FakeClock(NOW))
    try:
        result = await fetch(ctx(NOW))
    finally:
        await crawl.aclose()
    assert result["fetched"] == 1 and result["jobs_created"] == 3
    jobs = await JobStore(db).list_jobs(limit=10)
    assert {j.url for j in jobs} == {f"https://news.example.org/a/{n}.html" for n in (1, 2, 3)}
    assert all(j.feed_published_at is not None for j in jobs)
    stored = await FeedStore(db).get(feed.id)
    assert stored is not None and stored.last_status == "ok" and "gone.xml" in (stored.last_error or "")


async def test_robots_txt_sitemaps_are_probed_and_the_news_ones_added(
    db: Database, site: LoopbackServer, database_url: str
) -> None:
    from mediabeat.domain.content import Actor
    from mediabeat.services import build_content_services
    from mediabeat.settings import Settings
    from tests.crawler_helpers import TEST_SETTINGS

    robots = f"User-agent: *\nSitemap: {site.url('/news.xml')}\nSitemap: {site.url('/all.xml')}\nSitemap: http://10.9.9.9/x.xml\n"
    site.routes["/robots.txt"] = Route(body=robots.encode())
    site.routes["/news.xml"] = Route(body=urlset(1, 2))
    site.routes["/all.xml"] = Route(body=urlset(plain=3))
    content = build_content_services(Settings(database_url=database_url, **TEST_SETTINGS), db, FakeClock(NOW))
    org = await OrgStore(db).create("newsroom", now=NOW)
    found, added = await content.sitemaps.add_news_sitemaps(org.id, site.url("/"), Actor("cli:test"))
    assert [(f.url, f.news_entries) for f in found] == [
        (site.url("/news.xml"), 2),
        (site.url("/all.xml"), 0),
        ("http://10.9.9.9/x.xml", 0),
    ]
    assert "plain sitemap" in (found[1].reason or "") and found[2].reason  # a private address: refused
    assert [(feed.url, created) for feed, created in added] == [(site.url("/news.xml"), True)]
