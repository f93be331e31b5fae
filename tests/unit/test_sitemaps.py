"""News sitemaps: the bounded parser, robots.txt Sitemap lines, and indexes followed within their limits."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import pytest

from mediabeat.crawler.feeds import FeedParseError
from mediabeat.crawler.sitemaps import SitemapError, SitemapLimits, parse_sitemap, robots_sitemaps
from mediabeat.tasks.feed_entries import parse_feed_body

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
    'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
)


def news_url(n: int) -> str:
    return (
        f"<url><loc>https://news.example.org/a/{n}.html</loc><news:news><news:publication><news:name>N</news:name>"
        "<news:language>en</news:language></news:publication>"
        f"<news:publication_date>2026-12-03T10:0{n % 10}:00+01:00</news:publication_date>"
        f"<news:title>Story {n}</news:title></news:news></url>"
    )


def urlset(*numbers: int, plain: int = 0) -> bytes:
    plains = "".join(f"<url><loc>https://news.example.org/page/{k}</loc></url>" for k in range(plain))
    return (HEAD + "".join(news_url(n) for n in numbers) + plains + "</urlset>").encode()


def index(*children: str) -> bytes:
    body = "".join(f"<sitemap><loc>{c}</loc></sitemap>" for c in children)
    return f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</sitemapindex>'.encode()


def test_news_entries_only_with_their_dates_and_titles() -> None:
    parsed = parse_sitemap(urlset(1, 2, plain=3))
    assert parsed.kind == "urlset" and parsed.skipped_plain == 3
    assert [e.url for e in parsed.entries] == ["https://news.example.org/a/1.html", "https://news.example.org/a/2.html"]
    assert parsed.entries[0].title == "Story 1"
    assert parsed.entries[0].published_at == datetime(2026, 12, 3, 9, 1, tzinfo=UTC)


def test_bounds_and_refusals() -> None:
    limits = SitemapLimits(max_entries=3, max_children=2, max_bytes=100_000)
    cut = parse_sitemap(urlset(*range(10)), limits)
    assert len(cut.entries) == 3 and "more than 3" in cut.warnings[0]
    listed = parse_sitemap(
        index("https://a.example/1.xml", "https://a.example/2.xml", "https://a.example/3.xml"), limits
    )
    assert listed.kind == "index" and len(listed.children) == 2 and listed.warnings
    with pytest.raises(SitemapError, match="larger"):
        parse_sitemap(b"<urlset>" + b" " * 100_001, limits)
    with pytest.raises(SitemapError, match="once decompressed"):
        parse_sitemap(gzip.compress(b"<urlset>" + b" " * 200_000 + b"</urlset>"), limits)
    assert len(parse_sitemap(gzip.compress(urlset(1)), limits).entries) == 1
    with pytest.raises(SitemapError, match="neither"):
        parse_sitemap(b"<rss/>")
    bomb = b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]><urlset>&b;</urlset>'
    with pytest.raises(SitemapError):
        parse_sitemap(bomb)


def test_robots_sitemap_lines() -> None:
    robots = (
        "User-agent: *\nDisallow: /private\nSitemap: https://a.example/news.xml # news\n"
        "sitemap:https://a.example/b.xml\nSitemap: ftp://x/y\n"
    )
    assert robots_sitemaps(robots) == ["https://a.example/news.xml", "https://a.example/b.xml"]


async def test_indexes_are_followed_within_depth_and_children() -> None:
    bodies = {
        "https://a.example/top.xml": index("https://a.example/mid.xml", "https://a.example/n1.xml"),
        "https://a.example/mid.xml": index("https://a.example/deep.xml", "https://a.example/n2.xml"),
        "https://a.example/deep.xml": index("https://a.example/n3.xml"),
        "https://a.example/n1.xml": urlset(1),
        "https://a.example/n2.xml": urlset(2),
        "https://a.example/n3.xml": urlset(3),
    }
    asked: list[str] = []

    async def fetch(url: str) -> bytes:
        asked.append(url)
        return bodies[url]

    parsed = await parse_feed_body(
        bodies["https://a.example/top.xml"], url="https://a.example/top.xml", content_type="", fetch=fetch
    )
    assert [e.link for e in parsed.entries] == [
        "https://news.example.org/a/1.html",
        "https://news.example.org/a/2.html",
    ]
    assert parsed.parser == "sitemap" and "nested deeper than 2" in (parsed.warning or "")
    assert "https://a.example/n3.xml" not in asked

    few = SitemapLimits(max_children=1)
    asked.clear()
    parsed = await parse_feed_body(
        bodies["https://a.example/top.xml"], url="x", content_type="", fetch=fetch, limits=few
    )
    assert len(asked) == 1 and "more than 1 child" in (parsed.warning or "")

    async def failing(url: str) -> bytes:
        raise SitemapError("boom")

    parsed = await parse_feed_body(index("https://a.example/n1.xml"), url="x", content_type="", fetch=failing)
    assert parsed.entries == [] and "boom" in (parsed.warning or "")
    plain = await parse_feed_body(urlset(plain=4), url="x", content_type="")
    assert plain.entries == [] and "plain sitemap: 4 URLs" in (plain.warning or "")
    with pytest.raises(FeedParseError):
        await parse_feed_body(b"<urlset><unclosed>", url="x", content_type="")
