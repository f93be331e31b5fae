"""Finding a site's news sitemaps through its robots.txt `Sitemap:` lines, and adding them as feeds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from mediabeat.crawler.feeds import FeedParseError
from mediabeat.crawler.sitemaps import SitemapLimits, robots_sitemaps
from mediabeat.domain.content import Actor, FeedRecord, InvalidInput
from mediabeat.services.feeds import FeedService, canonical_feed_url
from mediabeat.tasks.feed_entries import sitemap_feed

if TYPE_CHECKING:  # aiohttp is imported when robots.txt is read, not when the CLI starts
    from mediabeat.crawler.http import SafeClient

# Probing a listed sitemap reads less than a fetch does: enough to tell news from a whole-site list.
PROBE_LIMITS = SitemapLimits(max_bytes=5 * 1024 * 1024, max_entries=1_000, max_children=5, max_depth=2)
MAX_LISTED = 20


@dataclass(frozen=True, slots=True)
class SitemapFinding:
    """One `Sitemap:` line of robots.txt: its news entries now, or why it is no news sitemap."""

    url: str
    news_entries: int
    reason: str | None  # None: a news sitemap


class SitemapService:
    """Reads robots.txt through the crawler's guarded client; adds the news sitemaps it lists as feeds."""

    def __init__(self, *, client_factory: Callable[[], SafeClient], feeds: FeedService) -> None:
        self.client_factory = client_factory
        self.feeds = feeds

    async def find(self, site_url: str) -> list[SitemapFinding]:
        """The sitemaps `site_url`'s robots.txt lists (at most MAX_LISTED), each probed for news entries."""
        from mediabeat.crawler.http import FetchError

        robots_url = urljoin(canonical_feed_url(site_url), "/robots.txt")
        async with self.client_factory() as client:
            try:
                robots = await client.get(robots_url)
            except FetchError as exc:
                raise InvalidInput("url", f"cannot read {robots_url}: {exc}") from None
            if robots.status != 200:
                raise InvalidInput("url", f"{robots_url} answered HTTP {robots.status}: no Sitemap lines to read")
            listed = robots_sitemaps(robots.body.decode("utf-8", "replace"), limit=MAX_LISTED)
            return [await self._probe(client, url) for url in listed]

    async def _probe(self, client: SafeClient, url: str) -> SitemapFinding:
        from mediabeat.crawler.http import FetchError, FetchErrorKind

        async def fetch(child: str) -> bytes:
            answer = await client.get(child)
            if answer.status != 200:
                raise FetchError(FetchErrorKind.NETWORK, f"HTTP {answer.status} from {child}")
            return answer.body

        try:
            parsed = await sitemap_feed(await fetch(url), fetch=fetch, limits=PROBE_LIMITS)
        except (FetchError, FeedParseError) as exc:
            return SitemapFinding(url, 0, str(exc))
        if not parsed.entries:
            return SitemapFinding(url, 0, parsed.warning or "no <news:news> entries")
        return SitemapFinding(url, len(parsed.entries), None)

    async def add_news_sitemaps(
        self, org_id: int, site_url: str, actor: Actor
    ) -> tuple[list[SitemapFinding], list[tuple[FeedRecord, bool]]]:
        """Add each news sitemap the site's robots.txt lists as a feed of the organisation."""
        found = await self.find(site_url)
        added = [await self.feeds.add(org_id, f.url, actor) for f in found if f.reason is None]
        return found, added
