"""The local news site over real loopback HTTP: content, feeds, 304s, robots.txt, OPML, time."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime

import feedparser
import httpx
import pytest
import trafilatura
from protego import Protego

from mediabeat.clock import FakeClock
from mediabeat.demo import content as demo_content
from mediabeat.demo import feeds as demo_feeds
from mediabeat.demo.site import create_demo_app, running_demo_site

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def site(clock: FakeClock) -> Iterator[httpx.Client]:
    config = demo_content.DemoSiteConfig(article_interval_s=60, feed_size=25)
    with (
        running_demo_site(create_demo_app(config, now=clock.now)) as urls,
        httpx.Client(base_url=urls[0], timeout=10) as client,
    ):
        yield client


def opml_feed_urls(body: bytes) -> list[str]:
    return [o.attrib["xmlUrl"] for o in ET.fromstring(body).iter("outline") if "xmlUrl" in o.attrib]


def test_opml_lists_every_section_feed_with_absolute_urls_of_the_request_host(site: httpx.Client) -> None:
    response = site.get("/feeds.opml")
    assert response.status_code == 200
    urls = opml_feed_urls(response.content)
    assert len(urls) == len(demo_content.SECTIONS) == 12
    assert all(url.startswith(str(site.base_url).rstrip("/") + "/feeds/") for url in urls)
    assert {u.rsplit(".", 1)[1] for u in urls} == {"rss", "atom"}


def test_every_feed_parses_with_feedparser_and_links_to_real_article_pages(site: httpx.Client) -> None:
    for url in opml_feed_urls(site.get("/feeds.opml").content):
        parsed = feedparser.parse(site.get(url).content)
        assert not parsed.bozo, (url, parsed.get("bozo_exception"))
        assert parsed.version == ("atom10" if url.endswith(".atom") else "rss20")
        assert len(parsed.entries) == 25
        entry = parsed.entries[0]
        assert entry.title and entry.author and entry.published_parsed
        assert entry.link.startswith(str(site.base_url).rstrip("/") + "/")
    first = feedparser.parse(site.get("/feeds/world.rss").content).entries[0]
    assert site.get(first.link).status_code == 200


def test_content_is_deterministic_for_the_same_time_and_seed(site: httpx.Client) -> None:
    first = site.get("/feeds/science.atom")
    second = site.get("/feeds/science.atom")
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]
    other_seed = demo_content.DemoSiteConfig(seed=2, article_interval_s=60, feed_size=25)
    base = str(site.base_url).rstrip("/")
    assert demo_feeds.atom_feed(other_seed, "science", base, START).encode() != first.content


def test_article_page_has_metadata_and_clutter_around_a_long_text(site: httpx.Client) -> None:
    entry = feedparser.parse(site.get("/feeds/business.rss").content).entries[3]
    page = site.get(entry.link)
    html = page.text
    for clutter in ('class="main-nav"', 'class="ad ', 'class="comments"', "cookie-banner", 'class="related"'):
        assert clutter in html
    assert f'<meta name="author" content="{entry.author}">' in html
    assert 'property="article:published_time"' in html
    extracted = trafilatura.bare_extraction(html, with_metadata=True).as_dict()
    assert extracted["title"] == entry.title
    assert extracted["author"] == entry.author
    assert len(extracted["text"]) > 600
    assert "Advertisement" not in extracted["text"] and "Accept all" not in extracted["text"]


def test_new_articles_appear_over_time_and_future_ones_are_not_served(site: httpx.Client, clock: FakeClock) -> None:
    before = feedparser.parse(site.get("/feeds/world.rss").content)
    newest = int(before.entries[0].link.rsplit("/", 1)[1].split("-", 1)[0])
    assert site.get(f"/world/{newest}-any-slug.html").status_code == 200
    assert site.get(f"/world/{newest + 1}-any-slug.html").status_code == 404
    clock.advance(seconds=60 * 3)
    after = feedparser.parse(site.get("/feeds/world.rss").content)
    new_links = [e.link for e in after.entries if e.link not in {b.link for b in before.entries}]
    assert len(new_links) == 3
    assert len(after.entries) == 25
    assert site.get(new_links[-1]).status_code == 200


def test_conditional_requests_get_304_until_a_new_article_appears(site: httpx.Client, clock: FakeClock) -> None:
    first = site.get("/feeds/health.atom")
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    by_etag = site.get("/feeds/health.atom", headers={"If-None-Match": etag})
    assert by_etag.status_code == 304 and by_etag.content == b"" and by_etag.headers["etag"] == etag
    by_date = site.get("/feeds/health.atom", headers={"If-Modified-Since": last_modified})
    assert by_date.status_code == 304
    assert site.get("/feeds/health.atom", headers={"If-None-Match": '"other"'}).status_code == 200
    clock.advance(seconds=61)
    changed = site.get("/feeds/health.atom", headers={"If-None-Match": etag, "If-Modified-Since": last_modified})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_article_pages_answer_conditional_requests(site: httpx.Client) -> None:
    link = feedparser.parse(site.get("/feeds/sport.rss").content).entries[5].link
    page = site.get(link)
    assert page.headers["last-modified"] and page.headers["etag"]
    assert site.get(link, headers={"If-None-Match": page.headers["etag"]}).status_code == 304
    assert site.get(link, headers={"If-Modified-Since": page.headers["last-modified"]}).status_code == 304
    assert site.get(link, headers={"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}).status_code == 200


def test_robots_txt_disallows_the_members_area(site: httpx.Client) -> None:
    response = site.get("/robots.txt")
    robots = Protego.parse(response.text)
    base = str(site.base_url).rstrip("/")
    assert not robots.can_fetch(f"{base}/private/archive", "MediaBeat")
    assert robots.can_fetch(f"{base}/world/1-x.html", "MediaBeat")
    assert site.get("/private/archive").status_code == 200


def test_unknown_paths_are_404(site: httpx.Client) -> None:
    assert site.get("/feeds/nope.rss").status_code == 404
    assert site.get("/nope/1-x.html").status_code == 404
    assert site.get("/world/abc.html").status_code == 404
    assert site.get("/hostile/nope/feed.xml").status_code == 404


def test_wire_feeds_for_benchmarks_are_listed_and_served(clock: FakeClock) -> None:
    config = demo_content.DemoSiteConfig(wire_feeds=30, feed_size=50)
    with running_demo_site(create_demo_app(config, now=clock.now)) as urls, httpx.Client(timeout=10) as client:
        feeds = opml_feed_urls(client.get(urls[0] + "/feeds.opml").content)
        assert len(feeds) == 42
        parsed = feedparser.parse(client.get(feeds[-1]).content)
        assert len(parsed.entries) == 50 and "/wire-29/" in parsed.entries[0].link


def test_one_site_listens_on_several_loopback_addresses(clock: FakeClock) -> None:
    app = create_demo_app(demo_content.DemoSiteConfig(), now=clock.now)
    with running_demo_site(app, ["127.0.0.1", "127.0.0.2", "127.0.0.3"]) as urls, httpx.Client(timeout=10) as client:
        assert [u.split("/")[2].split(":")[0] for u in urls] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
        for url in urls:
            feeds = opml_feed_urls(client.get(url + "/feeds.opml").content)
            assert all(f.startswith(url + "/") for f in feeds)
            assert client.get(feeds[0]).status_code == 200
