"""Finding a site's news sitemaps through its robots.txt `Sitemap:` lines, bounded, through the guarded client.

Used by `feeds sitemaps` (SitemapService) and by discovery when `feeds add` is given a site's address.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from mediabeat.crawler.feeds import FeedParseError
from mediabeat.crawler.sitemaps import SitemapLimits, robots_sitemaps
from mediabeat.domain.content import InvalidInput, SitemapFinding
from mediabeat.tasks.feed_entries import sitemap_feed

if TYPE_CHECKING:  # aiohttp is imported when robots.txt is read, not when the CLI starts
    from mediabeat.crawler.http import SafeClient

# Probing a listed sitemap reads less than a fetch does: enough to tell news from a whole-site list.
PROBE_LIMITS = SitemapLimits(max_bytes=5 * 1024 * 1024, max_entries=1_000, max_children=5, max_depth=2)
MAX_LISTED = 20
# When `feeds add` reads robots.txt on the side, fewer sitemaps are probed: the answer must come quickly.
MAX_LISTED_ON_ADD = 5


class NewsSitemapFinder:
    """Reads robots.txt and probes the sitemaps it lists (each through the same SafeClient)."""

    def __init__(self, client_factory: Callable[[], SafeClient]) -> None:
        self.client_factory = client_factory

    async def find(self, site_url: str, *, limit: int = MAX_LISTED) -> list[SitemapFinding]:
        """The sitemaps `site_url`'s robots.txt lists (at most `limit`), each probed for news entries.

        InvalidInput when robots.txt cannot be read (refused address, timeout, not HTTP 200).
        """
        from mediabeat.crawler.http import FetchError

        robots_url = urljoin(site_url, "/robots.txt")
        async with self.client_factory() as client:
            try:
                robots = await client.get(robots_url)
            except FetchError as exc:
                raise InvalidInput("url", f"cannot read {robots_url}: {exc}") from None
            if robots.status != 200:
                raise InvalidInput("url", f"{robots_url} answered HTTP {robots.status}: no Sitemap lines to read")
            listed = robots_sitemaps(robots.body.decode("utf-8", "replace"), limit=limit)
            return [await self._probe(client, url) for url in listed]

    async def find_on_add(self, site_url: str) -> tuple[list[SitemapFinding], str | None]:
        """For discovery on add: the findings, and a note instead of an error when robots.txt gives none."""
        try:
            found = await self.find(site_url, limit=MAX_LISTED_ON_ADD)
        except InvalidInput as exc:
            return [], f"robots.txt: {exc}"
        return found, None if found else "robots.txt lists no sitemap"

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
