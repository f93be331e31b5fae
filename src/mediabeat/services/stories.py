"""Story clusters: list an organisation's stories, read one, an article's story, and rebuild the clusters."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from mediabeat.db.stores.stories import StoryStore
from mediabeat.domain.content import Actor, InvalidInput
from mediabeat.domain.ids import valid_id
from mediabeat.domain.stories import ClusterMembership, RebuildResult, StoryDetail, StoryNotFound, StorySummary
from mediabeat.services.audit import AuditService
from mediabeat.services.orgs import OrgService
from mediabeat.stories.clusterer import StoryClusterer

MAX_STORIES = 500


class StoryService:
    """Read access to story clusters, and their rebuild (which crawl-queue's clustering otherwise keeps current)."""

    def __init__(self, *, store: StoryStore, clusterer: StoryClusterer, orgs: OrgService, audit: AuditService) -> None:
        self.store = store
        self.clusterer = clusterer
        self.orgs = orgs
        self.audit = audit

    async def list(self, *, org_id: int | None, limit: int = 50, min_size: int = 2) -> builtins.list[StorySummary]:
        """Stories largest first; by default only those with copies (two articles or more)."""
        if not 1 <= limit <= MAX_STORIES:
            raise InvalidInput("limit", f"must be between 1 and {MAX_STORIES}")
        if min_size < 1:
            raise InvalidInput("min_size", "must be at least 1")
        return await self.store.list(org_id=org_id, limit=limit, min_size=min_size)

    async def get(self, story_id: int) -> StoryDetail:
        story = await self.store.get(story_id) if valid_id(story_id) else None
        if story is None:
            raise StoryNotFound(story_id)
        return story

    async def memberships(self, article_ids: Sequence[int]) -> dict[int, ClusterMembership]:
        """Each clustered article's story id and size (an article missing from the answer has no cluster yet)."""
        return await self.store.memberships([a for a in article_ids if valid_id(a)])

    async def membership(self, article_id: int) -> ClusterMembership | None:
        return (await self.memberships([article_id])).get(article_id)

    async def rebuild(
        self, actor: Actor, *, org_id: int | None = None, resume: bool = False
    ) -> builtins.list[RebuildResult]:
        """Cluster every article of one organisation (or of all) afresh; `resume` only places unclustered ones."""
        org_ids = [org_id] if org_id is not None else [org.id for org in await self.orgs.list()]
        results = []
        for one in org_ids:
            result = await self.clusterer.rebuild(one, clear=not resume)
            await self.audit.record(
                actor,
                "stories.rebuild",
                target_type="org",
                target_id=one,
                details={"articles": result.articles, "stories": result.clusters},
            )
            results.append(result)
        return results
