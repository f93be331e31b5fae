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
