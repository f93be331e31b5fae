"""From a feed body to crawl jobs: the one path that polled feeds (hourly-rss-fetch) and pushed ones (WebSub) share."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from mediabeat.crawler.feeds import ParsedFeed, parse_fast, parse_robust
from mediabeat.crawler.urls import BadUrl, canonicalize, url_hash
from mediabeat.db.stores.jobs import NewJob
from mediabeat.domain.content import FeedRecord


@dataclass
class EntryLinks:
    """A feed's entry links, canonical and without repeats, in feed order, with the date each gave."""

    links: list[str] = field(default_factory=list)
    published: dict[str, datetime] = field(default_factory=dict)


async def parse_feed_body(body: bytes, *, url: str, content_type: str) -> ParsedFeed:
    """Parse a feed body for its links and dates; FeedParseError when it is no feed."""
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
