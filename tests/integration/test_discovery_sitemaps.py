"""Discovery on add reads the site's robots.txt `Sitemap:` lines too: news sitemaps are offered or added.

On the demo site (robots.txt lists a news sitemap index and a plain sitemap) and on loopback servers,
through the service, the API and the CLI's output, on both databases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from mediabeat.clock import FakeClock
from mediabeat.demo.content import DemoSiteConfig
from mediabeat.demo.site import create_demo_app, running_demo_site
from mediabeat.domain.content import SYSTEM, FeedCheckFailed
from mediabeat.services.news_sitemaps import PROBE_LIMITS
from tests.integration.api_fixtures import ApiEnv, make_env
from tests.integration.test_content_services import cli, ok
from tests.integration.test_feed_freshness import html_route, page
from tests.loopback import LoopbackServer, Route
from tests.unit.test_sitemaps import urlset

NOW = datetime(2026, 1, 3, 9, 0, 0, tzinfo=UTC)
SITE = DemoSiteConfig(feed_size=5, article_interval_s=600)


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[ApiEnv]:
    made = await make_env(
        database_url,
        crawler_allow_private_networks=True,
        crawler_connect_timeout=2.0,
        crawler_read_timeout=2.0,
        crawler_total_timeout=10.0,
    )
    yield made
    await made.services.close()


@pytest.fixture
def demo() -> Iterator[str]:
    with running_demo_site(create_demo_app(SITE, now=FakeClock(NOW).now)) as urls:
        yield urls[0]


async def test_the_demo_site_offers_its_news_sitemap_beside_its_feeds(env: ApiEnv, demo: str) -> None:
    feeds = env.services.content.feeds
    done = await feeds.add_address(env.org_id, demo + "/", SYSTEM)
    assert len(done.feeds) == 1 and done.feeds[0][0].url.startswith(demo + "/feeds/")
    news, pages = done.sitemaps
    assert (news.url, news.reason) == (f"{demo}/sitemaps/news.xml", None)
    # An index of 12 per-section news sitemaps: the probe reads 5 of them (PROBE_LIMITS), 5 entries each.
    assert news.news_entries == 5 * PROBE_LIMITS.max_children
    assert pages.url == f"{demo}/sitemaps/pages.xml" and pages.news_entries == 0 and pages.reason
    assert f"{demo}/sitemaps/news.xml" in done.also_found and done.robots_note is None

    every = await feeds.add_address(env.org_id, demo + "/", SYSTEM, all_feeds=True)
    added = {feed.url for feed, _ in every.feeds}
    assert f"{demo}/sitemaps/news.xml" in added and f"{demo}/sitemaps/pages.xml" not in added
    assert every.also_found == []


async def test_the_api_says_what_robots_txt_gave(env: ApiEnv, demo: str) -> None:
    async with env.member() as client:
        added = await client.post("/api/v1/feeds", json={"url": demo + "/"})
        assert added.status_code == 201, added.text
        body = added.json()
    assert [m["url"] for m in body["sitemaps"]] == [f"{demo}/sitemaps/news.xml", f"{demo}/sitemaps/pages.xml"]
    assert body["sitemaps"][0]["reason"] is None and body["sitemaps"][0]["news_entries"] > 0
    assert body["robots_note"] is None


async def test_a_site_with_a_news_sitemap_and_no_feed_adds_the_sitemap(env: ApiEnv, site: LoopbackServer) -> None:
    site.routes["/"] = html_route(page())
    site.routes["/robots.txt"] = Route(body=f"User-agent: *\nSitemap: {site.url('/news.xml')}\n".encode())
    site.routes["/news.xml"] = Route(body=urlset(1, 2))
    done = await env.services.content.feeds.add_address(env.org_id, site.url("/"), SYSTEM)
    assert [(feed.url, created) for feed, created in done.feeds] == [(site.url("/news.xml"), True)]
    assert done.found == [] and done.sitemaps[0].news_entries == 2


async def test_robots_txt_is_bounded_and_its_failures_are_said(env: ApiEnv, site: LoopbackServer) -> None:
    feeds = env.services.content.feeds
    site.routes["/"] = html_route(page())
    # No robots.txt: the refusal says so beside what the page gave.
    with pytest.raises(FeedCheckFailed, match=r"robots\.txt.*HTTP 404"):
        await feeds.add_address(env.org_id, site.url("/"), SYSTEM)
    # Sitemaps that are no news ones, or on a private address, are named with why; only five are probed.
    lines = "".join(f"Sitemap: {site.url(f'/plain-{n}.xml')}\n" for n in range(8))
    site.routes["/robots.txt"] = Route(body=f"Sitemap: http://10.9.9.9/news.xml\n{lines}".encode())
    for n in range(8):
        site.routes[f"/plain-{n}.xml"] = Route(body=urlset(plain=3))
    with pytest.raises(FeedCheckFailed, match="no news sitemap") as refused:
        await feeds.add_address(env.org_id, site.url("/"), SYSTEM)
    assert "10.9.9.9" in str(refused.value)
    probed = {path for path, _ in site.requests if path.startswith("/plain-")}
    assert len(probed) == 4  # the private address took the first of the five places, refused before connecting


async def test_a_feed_address_does_not_read_robots_txt(env: ApiEnv, site: LoopbackServer) -> None:
    site.routes["/news.rss"] = Route(
        body=b'<rss version="2.0"><channel><title>N</title><item><link>/a</link></item></channel></rss>',
        headers={"Content-Type": "application/rss+xml"},
    )
    done = await env.services.content.feeds.add_address(env.org_id, site.url("/news.rss"), SYSTEM)
    assert done.sitemaps == [] and done.robots_note is None
    assert all(path != "/robots.txt" for path, _ in site.requests)


async def test_the_cli_says_what_robots_txt_gave(env: ApiEnv, demo: str) -> None:
    loopback = {"MEDIABEAT_CRAWLER_ALLOW_PRIVATE_NETWORKS": "true"}
    printed = " ".join(ok(await cli(env, "feeds", "add", demo + "/", "--org", "api-org", **loopback)).split())
    assert "added feed" in printed
    assert f"robots.txt lists {demo}/sitemaps/news.xml (a news sitemap, 25 entries)" in printed
    assert f"robots.txt lists {demo}/sitemaps/pages.xml (no news:" in printed
    assert "not added (use --all)" in printed and f"{demo}/sitemaps/news.xml" in printed
