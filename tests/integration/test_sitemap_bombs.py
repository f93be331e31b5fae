"""Sitemap bombs in the fetch pass: each is bounded or refused with a reason on its feed; the other feeds go on.

Both databases, loopback servers: an index that lists itself (a loop), indexes nested past the
depth, a gzip bomb, an entity bomb and a body over the size limit, beside a good news sitemap.
"""

from __future__ import annotations

import gzip
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
ENTITY_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]>'
    b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>&d;</loc></url></urlset>'
)


async def test_sitemap_bombs_are_bounded_with_a_reason_and_the_good_feed_is_read(
    db: Database, site: LoopbackServer
) -> None:
    site.routes["/loop.xml"] = Route(body=index(site.url("/loop.xml"), site.url("/news.xml")))
    site.routes["/deep-0.xml"] = Route(body=index(site.url("/deep-1.xml")))
    site.routes["/deep-1.xml"] = Route(body=index(site.url("/deep-2.xml")))
    site.routes["/deep-2.xml"] = Route(body=index(site.url("/deep-3.xml")))
    site.routes["/deep-3.xml"] = Route(body=urlset(9))
    site.routes["/gzip-bomb.xml"] = Route(
        body=gzip.compress(b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">' + b" " * 30_000_000)
    )
    site.routes["/entities.xml"] = Route(body=ENTITY_BOMB)
    site.routes["/huge.xml"] = Route(body=urlset(1) + b" " * 2_000_000)
    site.routes["/news.xml"] = Route(body=urlset(1, 2))
    org = await OrgStore(db).create("newsroom", now=NOW)
    store = FeedStore(db)
    paths = ["/loop.xml", "/deep-0.xml", "/gzip-bomb.xml", "/entities.xml", "/huge.xml"]
    ids = {path: (await store.add(org.id, site.url(path), now=NOW))[0].id for path in paths}
    fetch, crawl = handlers(db, FakeClock(NOW))
    try:
        result = await fetch(ctx(NOW))
    finally:
        await crawl.aclose()
    jobs = {j.url for j in await JobStore(db).list_jobs(limit=20)}
    # The looping index is read once per level: its news child's entries are queued, the loop is cut.
    assert jobs == {"https://news.example.org/a/1.html", "https://news.example.org/a/2.html"}
    assert result["fetched"] >= 1
    state = {path: await store.get(feed_id) for path, feed_id in ids.items()}
    loop, deep = state["/loop.xml"], state["/deep-0.xml"]
    assert loop is not None and deep is not None
    assert "nested deeper than" in (deep.last_error or "") and "https://news.example.org/a/9.html" not in jobs
    for path in ("/gzip-bomb.xml", "/entities.xml", "/huge.xml"):
        feed = state[path]
        assert feed is not None and feed.last_error, path  # refused, with the reason recorded on the feed
        assert feed.consecutive_failures == 1 and feed.active, path  # backed off, not disabled
    assert "larger than 10485760 bytes once decompressed" in (state["/gzip-bomb.xml"].last_error or "")  # type: ignore[union-attr]
    assert "entity declarations refused" in (state["/entities.xml"].last_error or "")  # type: ignore[union-attr]
    assert "larger than 1000000 bytes" in (state["/huge.xml"].last_error or "")  # type: ignore[union-attr]
    assert "nested deeper than" in (loop.last_error or "")
    assert sum(1 for p in site.paths() if p == "/loop.xml") <= 3  # the loop is bounded by the depth
