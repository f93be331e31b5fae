"""Organisations: the tenants that own feeds, articles and crawl jobs."""

from __future__ import annotations

import builtins
from collections import Counter

from mediabeat.clock import Clock
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.domain.content import MAX_ORG_NAME, Actor, InvalidInput, OrgNotFound, OrgRecord, OrgSummary
from mediabeat.domain.ids import valid_id
from mediabeat.services.audit import AuditService


def clean_org_name(name: str) -> str:
    """An organisation's name without surrounding spaces, or InvalidInput."""
    name = name.strip()
    if not name:
        raise InvalidInput("name", "an organisation needs a name")
    if len(name) > MAX_ORG_NAME:
        raise InvalidInput("name", f"an organisation name has at most {MAX_ORG_NAME} characters")
    return name


class OrgService:
    """Create, find, list and delete organisations (deleting takes their feeds, jobs and articles)."""

    def __init__(self, *, store: OrgStore, feeds: FeedStore, audit: AuditService, clock: Clock) -> None:
        self.store = store
        self.feeds = feeds
        self.audit = audit
        self.clock = clock

    async def create(self, name: str, actor: Actor, *, is_demo: bool = False) -> OrgRecord:
        """A new organisation; OrgExists when the name is taken."""
        org = await self.store.create(clean_org_name(name), now=self.clock.now(), is_demo=is_demo)
        await self.audit.record(actor, "org.create", target_type="org", target_id=org.id, details={"name": org.name})
        return org

    async def list(self) -> list[OrgRecord]:
        return await self.store.list()

    async def list_with_feed_counts(self) -> builtins.list[OrgSummary]:
        counts = Counter(f.org_id for f in await self.feeds.list())
        return [OrgSummary(org=o, feeds=counts[o.id]) for o in await self.store.list()]

    async def find(self, org_id: int) -> OrgRecord | None:
        return await self.store.get(org_id) if valid_id(org_id) else None

    async def get(self, org_id: int) -> OrgRecord:
        org = await self.find(org_id)
        if org is None:
            raise OrgNotFound(org_id)
        return org

    async def get_by_name(self, name: str) -> OrgRecord:
        org = await self.store.get_by_name(name)
        if org is None:
            raise OrgNotFound(f"named {name.strip()!r} (see `mediabeat orgs list`)")
        return org

    async def find_by_name(self, name: str) -> OrgRecord | None:
        return await self.store.get_by_name(name)

    async def delete(self, org_id: int, actor: Actor) -> OrgRecord:
        org = await self.get(org_id)
        if not await self.store.delete(org.id, now=self.clock.now()):
            raise OrgNotFound(org_id)
        await self.audit.record(actor, "org.delete", target_type="org", target_id=org.id, details={"name": org.name})
        return org
