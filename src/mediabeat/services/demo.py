"""The demo organisation that `serve --demo` keeps in step with the local news site, and its removal."""

from __future__ import annotations

from collections.abc import Sequence

from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.domain.content import Actor, NotDemoOrg, OrgRecord
from mediabeat.services.audit import AuditService
from mediabeat.services.orgs import OrgService


class DemoOrgService:
    """Create, update and remove the demo organisation; one of that name not made as the demo is left alone."""

    def __init__(self, *, orgs: OrgService, feeds: FeedStore, articles: ArticleStore, audit: AuditService) -> None:
        self.orgs = orgs
        self.feeds = feeds
        self.articles = articles
        self.audit = audit

    async def sync(self, name: str, wanted: Sequence[tuple[str, str | None]], actor: Actor) -> tuple[OrgRecord, int]:
        """Make the demo organisation follow exactly `wanted` (url, title) feeds: (the org, how many feeds).

        The demo site's port may change between runs, so the org's feeds that are not wanted are removed.
        """
        org = await self.orgs.find_by_name(name)
        if org is not None and not org.is_demo:
            raise NotDemoOrg(name, "rename it first")
        if org is None:
            org = await self.orgs.create(name, actor, is_demo=True)
        urls = {url for url, _ in wanted}
        for feed in await self.feeds.list(org_id=org.id):
            if feed.url not in urls:
                await self.feeds.delete(feed.id)
        await self.feeds.add_many(org.id, wanted, now=self.orgs.clock.now())
        return org, len(wanted)

    async def remove(self, name: str, actor: Actor) -> tuple[int, int] | None:
        """Delete the demo organisation: (its feeds, its articles), or None when there is none."""
        org = await self.orgs.find_by_name(name)
        if org is None:
            return None
        if not org.is_demo:
            raise NotDemoOrg(name, "not removing it")
        feed_count = len(await self.feeds.list(org_id=org.id))
        article_count = await self.articles.count(org_id=org.id)
        await self.orgs.delete(org.id, actor)
        return feed_count, article_count
