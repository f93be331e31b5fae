"""Feeds: adding them (one at a time or from OPML), switching them on and off, their priority, export."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mediabeat.clock import Clock
from mediabeat.crawler.opml import MAX_OPML_BYTES, OpmlError, OpmlFeed, parse_opml, render_opml
from mediabeat.crawler.urls import BadUrl, canonicalize
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.tables import MAX_PRIORITY, MIN_PRIORITY
from mediabeat.domain.content import (
    MAX_URL_LENGTH,
    Actor,
    BadFeedUrl,
    BadOpml,
    CheckedFeed,
    FeedAddition,
    FeedCheckFailed,
    FeedFetchReport,
    FeedNotFound,
    FeedRecord,
    InvalidInput,
    OpmlImport,
    OpmlPlan,
    OpmlTooLarge,
    OrgNotFound,
    SitemapFinding,
)
from mediabeat.domain.ids import valid_id
from mediabeat.services.audit import AuditService

if TYPE_CHECKING:
    from mediabeat.crawler.discovery import FeedFinder
    from mediabeat.services.news_sitemaps import NewsSitemapFinder
    from mediabeat.tasks.rss_fetch import RssFetch

# Feeds an OPML import writes per transaction. On SQLite an import holds the write lock for one batch at a
# time, not for the whole file (issue 17: 20,000 feeds in one transaction held it for 15 s, 0.75 ms a feed).
# Measured here (add_many, SQLite WAL, 5,000 feeds, 2 shared cores under a test run): 3.2 ms a feed, the
# same total with batches of 500 or 5,000, so batching costs nothing. 200 a batch keeps another writer's
# wait under 0.2 s on an idle machine and about 0.65 s on this loaded one.
IMPORT_BATCH = 200


def canonical_feed_url(url: str) -> str:
    """A feed URL in its canonical spelling, or BadFeedUrl: the one rule for the API, the CLI and OPML."""
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise BadFeedUrl(f"a feed URL has at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() for c in url):
        raise BadFeedUrl("a feed URL has no spaces (write them as %20); it starts with http:// or https://")
    try:
        return canonicalize(url)
    except BadUrl as exc:
        raise BadFeedUrl(f"{exc}: a feed URL starts with http:// or https:// and names a host") from None


def plan_opml_import(data: bytes, *, max_feeds: int) -> OpmlPlan:
    """What importing `data` would add: parse, check the limits, canonicalise each URL. No I/O."""
    if len(data) > MAX_OPML_BYTES:
        raise OpmlTooLarge(f"the OPML file is larger than {MAX_OPML_BYTES // (1024 * 1024)} MB")
    try:
        entries = parse_opml(data)
    except OpmlError as exc:
        raise BadOpml(str(exc)) from None
    if len(entries) > max_feeds:
        raise OpmlTooLarge(
            f"the OPML file lists {len(entries)} feeds; one import adds at most {max_feeds}"
            " (MEDIABEAT_OPML_MAX_FEEDS): split the file"
        )
    usable: list[tuple[str, str | None]] = []
    skipped: list[str] = []
    for entry in entries:
        try:
            usable.append((canonical_feed_url(entry.url), entry.title))
        except BadFeedUrl:
            skipped.append(entry.url[:200])
    return OpmlPlan(listed=len(entries), usable=usable, skipped=skipped)


class FeedService:
    """The rules for an organisation's feeds; every change is audited."""

    def __init__(
        self,
        *,
        store: FeedStore,
        orgs: OrgStore,
        audit: AuditService,
        clock: Clock,
        opml_max_feeds: int,
        finder: Callable[[], FeedFinder] | None = None,
        fetcher: Callable[[], RssFetch] | None = None,
        sitemaps: Callable[[], NewsSitemapFinder] | None = None,
        address_refusal: Callable[[str], str | None] | None = None,
    ) -> None:
        self.store = store
        self.orgs = orgs
        self.audit = audit
        self.clock = clock
        self.opml_max_feeds = opml_max_feeds
        self.finder = finder
        self.fetcher = fetcher
        self.sitemaps = sitemaps
        self.address_refusal = address_refusal

    async def add(self, org_id: int, url: str, actor: Actor, *, title: str | None = None) -> tuple[FeedRecord, bool]:
        """Add a feed; one the organisation has already comes back unchanged with created=False."""
        canonical = canonical_feed_url(url)
        feed, created = await self.store.add(org_id, canonical, now=self.clock.now(), title=title)
        if created:
            await self.audit.record(
                actor, "feed.create", target_type="feed", target_id=feed.id, details={"url": feed.url}
            )
        return feed, created

    async def add_address(
        self,
        org_id: int,
        url: str,
        actor: Actor,
        *,
        title: str | None = None,
        check: bool = True,
        all_feeds: bool = False,
    ) -> FeedAddition:
        """Add the feed(s) at `url`: a feed's address, or a site's, whose feeds are discovered.

        With check (the default) the address is fetched once: a feed is parsed; a page's
        `<link rel="alternate">` feeds, or else the usual paths, are found and checked, and the
        site's robots.txt `Sitemap:` lines are read for news sitemaps. A site with several feeds
        adds its first (the page's preferred) and offers the rest, news sitemaps included, unless
        all_feeds; a site with news sitemaps and no feed adds its first news sitemap. Nothing usable
        raises FeedCheckFailed with the reason. Without check the URL is added as it is.
        """
        canonical = canonical_feed_url(url)
        if not check or self.finder is None:
            # Unchecked, the address is not fetched now, so a literal address the crawler refuses would
            # only fail every fetch: refuse it here (a host name is vetted when resolved, at fetch time).
            if self.address_refusal is not None and (why := self.address_refusal(canonical)) is not None:
                raise FeedCheckFailed(why)
            feed, created = await self.add(org_id, canonical, actor, title=title)
            return FeedAddition(canonical, False, [(feed, created)], [], [], [])
        await self.orgs_exists(org_id)
        found = await self.finder().discover(canonical, want_all=all_feeds)
        sitemaps, note = await self._robots_sitemaps(canonical, found.page_was_html)
        news = [s.url for s in sitemaps if s.reason is None]
        if not found.feeds and not news:
            raise FeedCheckFailed(found.reason + (f"; {note}" if note else "") + _not_news(sitemaps))
        chosen = found.feeds if all_feeds else found.feeds[:1]
        chosen_news = news if all_feeds or not found.feeds else []
        chosen_news = chosen_news if all_feeds else chosen_news[:1]
        added: list[tuple[FeedRecord, bool]] = []
        for one in chosen:
            name = title if title and len(chosen) + len(chosen_news) == 1 else one.title
            added.append(await self.add(org_id, canonical_feed_url(one.url), actor, title=name))
        for sitemap in chosen_news:
            name = title if title and not chosen and len(chosen_news) == 1 else None
            added.append(await self.add(org_id, canonical_feed_url(sitemap), actor, title=name))
        checked = [CheckedFeed(f.url, f.title, f.entries) for f in found.feeds]
        also = [f.url for f in found.feeds[len(chosen) :]] + found.unchecked + news[len(chosen_news) :]
        refused = [(r.url, r.reason) for r in found.refused]
        return FeedAddition(canonical, True, added, checked, also, refused, sitemaps=sitemaps, robots_note=note)

    async def _robots_sitemaps(self, address: str, is_site: bool) -> tuple[list[SitemapFinding], str | None]:
        """A site's robots.txt sitemaps, probed for news (bounded); nothing for a feed's own address."""
        if not is_site or self.sitemaps is None:
            return [], None
        return await self.sitemaps().find_on_add(address)

    async def orgs_exists(self, org_id: int) -> None:
        if await self.orgs.get(org_id) is None:
            raise OrgNotFound(org_id)

    async def fetch_now(self, feed_id: int, actor: Actor) -> FeedFetchReport:
        """Fetch one feed now, whatever its schedule: its new entries are queued, its next fetch is planned."""
        feed = await self.get(feed_id)
        if self.fetcher is None:
            raise InvalidInput("feed_id", "fetching feeds is not available in this process")
        outcome = await self.fetcher().fetch_one(feed, self.clock.now())
        after = await self.get(feed_id)
        details = {"url": feed.url, "outcome": outcome.outcome, "new_jobs": outcome.jobs_created}
        await self.audit.record(actor, "feed.fetch", target_type="feed", target_id=feed_id, details=details)
        return FeedFetchReport(
            feed=after,
            outcome=outcome.outcome,
            status=outcome.update.last_status,
            error=outcome.update.last_error,
            entries=len(outcome.links),
            new_jobs=outcome.jobs_created,
        )

    async def import_opml(self, org_id: int, data: bytes, actor: Actor) -> OpmlImport:
        """Add every feed of an OPML file, IMPORT_BATCH per transaction; feeds the organisation has stay."""
        plan = plan_opml_import(data, max_feeds=self.opml_max_feeds)
        added = (
            await self.store.add_many(org_id, plan.usable, now=self.clock.now(), batch_size=IMPORT_BATCH)
            if plan.usable
            else []
        )
        result = OpmlImport(org_id=org_id, listed=plan.listed, feeds=added, skipped=plan.skipped)
        details = {"added": result.added, "existing": result.existing, "skipped": plan.skipped[:20]}
        await self.audit.record(actor, "feed.import", target_type="org", target_id=org_id, details=details)
        return result

    async def export_opml(self, org_id: int) -> bytes:
        org = await self.orgs.get(org_id)
        feeds = await self.store.list(org_id=org_id)
        return render_opml(
            [OpmlFeed(url=f.url, title=f.title) for f in feeds],
            title=f"MediaBeat feeds of {org.name if org else org_id}",
            now=self.clock.now(),
        )

    async def list(self, *, org_id: int | None = None, active: bool | None = None) -> list[FeedRecord]:
        return await self.store.list(org_id=org_id, active=active)

    async def find(self, feed_id: int) -> FeedRecord | None:
        return await self.store.get(feed_id) if valid_id(feed_id) else None

    async def get(self, feed_id: int) -> FeedRecord:
        feed = await self.find(feed_id)
        if feed is None:
            raise FeedNotFound(feed_id)
        return feed

    async def change(
        self,
        feed_id: int,
        actor: Actor,
        *,
        active: bool | None = None,
        reason: str | None = None,
        priority: int | None = None,
    ) -> FeedRecord:
        """Enable or disable a feed and/or set its priority (0-9, applied to its queued jobs too)."""
        if priority is not None and not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            raise InvalidInput("priority", f"priority must be {MIN_PRIORITY} to {MAX_PRIORITY}, not {priority}")
        await self.get(feed_id)
        feed = await self.store.change(feed_id, active=active, reason=reason, priority=priority, now=self.clock.now())
        if feed is None:
            raise FeedNotFound(feed_id)
        if active is not None:
            action = "feed.enable" if active else "feed.disable"
            details: dict[str, object] = {"url": feed.url, "reason": reason}
            await self.audit.record(actor, action, target_type="feed", target_id=feed_id, details=details)
        if priority is not None:
            await self.audit.record(
                actor,
                "feed.priority",
                target_type="feed",
                target_id=feed_id,
                details={"url": feed.url, "priority": priority},
            )
        return feed

    async def delete(self, feed_id: int, actor: Actor) -> FeedRecord:
        """Remove a feed (its articles stay)."""
        feed = await self.get(feed_id)
        if not await self.store.delete(feed_id, now=self.clock.now()):
            raise FeedNotFound(feed_id)
        await self.audit.record(actor, "feed.delete", target_type="feed", target_id=feed_id, details={"url": feed.url})
        return feed


def _not_news(sitemaps: list[SitemapFinding]) -> str:
    """Why the sitemaps robots.txt lists were no use, for the refusal's message."""
    if not sitemaps:
        return ""
    return "; robots.txt lists no news sitemap (" + "; ".join(f"{s.url}: {s.reason}" for s in sitemaps[:3]) + ")"
