"""From a feed body to crawl jobs: the one path that polled feeds (hourly-rss-fetch) and pushed ones (WebSub) share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from mediabeat.crawler.feeds import FeedEntry, FeedParseError, FeedParseErrorKind, ParsedFeed, parse_fast, parse_robust
from mediabeat.crawler.sitemaps import ParsedSitemap, SitemapError, SitemapLimits, looks_like_sitemap, parse_sitemap
from mediabeat.crawler.urls import BadUrl, canonicalize, url_hash
from mediabeat.db.stores.jobs import NewJob
from mediabeat.domain.content import FeedRecord

# Fetches a child sitemap's body (through the SSRF-guarded client); raises on failure.
ChildFetcher = Callable[[str], Awaitable[bytes]]
LIMITS = SitemapLimits()


@dataclass
class EntryLinks:
    """A feed's entry links, canonical and without repeats, in feed order, with the date each gave."""

    links: list[str] = field(default_factory=list)
    published: dict[str, datetime] = field(default_factory=dict)


async def parse_feed_body(
    body: bytes, *, url: str, content_type: str, fetch: ChildFetcher | None = None, limits: SitemapLimits = LIMITS
) -> ParsedFeed:
    """Parse a feed body for its links and dates; FeedParseError when it is no feed.

    A news sitemap is a feed too (its <news:news> entries); the child sitemaps of a sitemap
    index are fetched with `fetch`, within `limits` (without `fetch`, an index gives no entries).
    """
    if looks_like_sitemap(body):
        return await sitemap_feed(body, fetch=fetch, limits=limits)
    fast = parse_fast(body, url=url, details=False)  # only the links and dates are used
    if fast is not None:
        return fast
    # feedparser takes tens of milliseconds: keep it off the event loop so other fetches keep flowing.
    return await asyncio.to_thread(parse_robust, body, url=url, content_type=content_type)


def entry_links(parsed: ParsedFeed) -> EntryLinks:
    """The canonical link of each entry (entries whose link is no usable URL are left out)."""
    out = EntryLinks()
    seen: set[str] = set()
    for entry in parsed.entries:
        try:
            canonical = canonicalize(entry.link)
        except BadUrl:
            continue
        if canonical not in seen:
            seen.add(canonical)
            out.links.append(canonical)
            if entry.published_at is not None:
                out.published[canonical] = entry.published_at
    return out


def crawl_jobs(feed: FeedRecord, links: Iterable[str], published: dict[str, datetime]) -> list[NewJob]:
    """One crawl job per link of `feed`, at the feed's priority, with the entry's date."""
    return [
        NewJob(
            org_id=feed.org_id,
            feed_id=feed.id,
            url=link,
            url_hash=url_hash(link),
            priority=feed.priority,
            feed_published_at=published.get(link),
        )
        for link in links
    ]


async def sitemap_feed(body: bytes, *, fetch: ChildFetcher | None, limits: SitemapLimits) -> ParsedFeed:
    """A news sitemap (or an index of them, followed within `limits`) as a ParsedFeed of its news entries."""
    try:
        top = parse_sitemap(body, limits)
    except SitemapError as exc:
        raise FeedParseError(FeedParseErrorKind.MALFORMED, f"not a readable sitemap: {exc}") from None
    sitemaps, warnings = await _expand(top, fetch, limits)
    entries: list[FeedEntry] = []
    plain = 0
    for sitemap in sitemaps:
        plain += sitemap.skipped_plain
        for news in sitemap.entries:
            if len(entries) >= limits.max_entries:
                warnings.append(f"more than {limits.max_entries} news entries in all: the rest are not read")
                break
            entries.append(FeedEntry(news.url, news.title, news.published_at))
    if not entries and plain:
        warnings.append(f"a plain sitemap: {plain} URLs without <news:news>, none queued")
    warning = "; ".join(dict.fromkeys(warnings))[:1000] or None
    return ParsedFeed(None, None, entries, "sitemap", warning=warning)


async def _expand(
    top: ParsedSitemap, fetch: ChildFetcher | None, limits: SitemapLimits
) -> tuple[list[ParsedSitemap], list[str]]:
    """The urlsets under `top`, breadth first: at most max_children fetched in all, max_depth levels of index."""
    from mediabeat.crawler.http import FetchError  # aiohttp: only when a sitemap index is followed

    warnings = list(top.warnings)
    urlsets = [top] if top.kind == "urlset" else []
    level, depth, fetched = [top], 0, 0
    while level and any(s.kind == "index" for s in level):
        depth += 1
        children = [c for s in level if s.kind == "index" for c in s.children]
        if depth > limits.max_depth:
            warnings.append(f"sitemap indexes nested deeper than {limits.max_depth}: not followed")
            break
        if fetch is None:
            warnings.append("a sitemap index: its child sitemaps are not fetched here")
            break
        level = []
        for child in children:
            if fetched >= limits.max_children:
                warnings.append(f"more than {limits.max_children} child sitemaps in all: the rest are not read")
                break
            fetched += 1
            try:
                parsed = parse_sitemap(await fetch(child), limits)
            except (SitemapError, FetchError) as exc:
                warnings.append(f"{child[:200]}: {exc}")
                continue
            warnings.extend(parsed.warnings)
            level.append(parsed)
            if parsed.kind == "urlset":
                urlsets.append(parsed)
    return urlsets, warnings
