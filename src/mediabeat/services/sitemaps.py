"""Finding a site's news sitemaps through its robots.txt `Sitemap:` lines, and adding them as feeds."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mediabeat.domain.content import Actor, FeedRecord, SitemapFinding
from mediabeat.services.feeds import FeedService, canonical_feed_url
from mediabeat.services.news_sitemaps import MAX_LISTED, PROBE_LIMITS, NewsSitemapFinder

if TYPE_CHECKING:  # aiohttp is imported when robots.txt is read, not when the CLI starts
    from mediabeat.crawler.http import SafeClient

__all__ = ["MAX_LISTED", "PROBE_LIMITS", "SitemapFinding", "SitemapService"]


class SitemapService:
    """Reads robots.txt through the crawler's guarded client; adds the news sitemaps it lists as feeds."""

    def __init__(self, *, client_factory: Callable[[], SafeClient], feeds: FeedService) -> None:
        self.finder = NewsSitemapFinder(client_factory)
        self.feeds = feeds

    async def find(self, site_url: str) -> list[SitemapFinding]:
        """The sitemaps `site_url`'s robots.txt lists (at most MAX_LISTED), each probed for news entries."""
        return await self.finder.find(canonical_feed_url(site_url))

    async def add_news_sitemaps(
        self, org_id: int, site_url: str, actor: Actor
    ) -> tuple[list[SitemapFinding], list[tuple[FeedRecord, bool]]]:
        """Add each news sitemap the site's robots.txt lists as a feed of the organisation."""
        found = await self.find(site_url)
        added = [await self.feeds.add(org_id, f.url, actor) for f in found if f.reason is None]
        return found, added
