"""Organisations: the tenants that own feeds, articles and crawl jobs."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.stores.rows import record_of
from mediabeat.db.stores.websub import retire
from mediabeat.db.tables import articles as articles_t
from mediabeat.db.tables import feeds as feeds_t
from mediabeat.db.tables import media_crawl_jobs as jobs_t
from mediabeat.db.tables import organizations as orgs_t
from mediabeat.db.tables import story_clusters as story_clusters_t
from mediabeat.db.tables import websub_subscriptions as subs_t
from mediabeat.domain.content import OrgExists, OrgRecord
from mediabeat.domain.websub import UnsubscribeReason

DELETE_BATCH = 1000


class OrgStore:
    """organizations: create, look up, list, delete (deleting cascades to feeds, articles, jobs)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str, *, now: datetime, is_demo: bool = False) -> OrgRecord:
        name = name.strip()
        if not name:
            raise ValueError("an organisation needs a name")
        if len(name) > 200:
            raise ValueError("an organisation name has at most 200 characters")
        try:
            async with self.db.write() as conn:
                row = (
                    await conn.execute(
                        orgs_t.insert().values(name=name, is_demo=is_demo, created_at=now).returning(*orgs_t.c)
                    )
                ).one()
        except sa.exc.IntegrityError:
            raise OrgExists(f"organisation {name!r} already exists") from None
        return record_of(OrgRecord, row)

    async def get(self, org_id: int) -> OrgRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(orgs_t).where(orgs_t.c.id == org_id))).first()
        return record_of(OrgRecord, row) if row else None

    async def get_by_name(self, name: str) -> OrgRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(orgs_t).where(orgs_t.c.name == name.strip()))).first()
        return record_of(OrgRecord, row) if row else None

    async def list(self) -> list[OrgRecord]:
        async with self.db.read() as conn:
            rows = await conn.execute(sa.select(orgs_t).order_by(orgs_t.c.id))
            return [record_of(OrgRecord, r) for r in rows]

    async def delete(self, org_id: int, *, now: datetime | None = None) -> bool:
        """Delete an organisation with everything it owns, in short transactions.

        One cascading DELETE of an organisation with 100,000 articles holds SQLite's write lock
        for seconds, and every other writer waits behind it. Its jobs, articles and feeds go
        first, DELETE_BATCH rows a transaction (a few tens of milliseconds each), so another
        writer waits at most one batch; the organisation's own row goes last.
        """
        # Jobs point at articles, articles at feeds; an article's cluster row and bands go with it,
        # and its organisation's story clusters (one per story) are emptied by then.
        # Its WebSub subscriptions first: each hub that may push is asked to stop, and pushes get 410.
        async with self.db.write() as conn:
            reason = UnsubscribeReason.ORG_REMOVED.value
            await retire(conn, subs_t.c.org_id == org_id, reason, now=now or datetime.now(UTC))
        for table in (jobs_t, articles_t, feeds_t, story_clusters_t):
            while await self._delete_batch(table, org_id) == DELETE_BATCH:
                pass
        async with self.db.write() as conn:
            result = await conn.execute(orgs_t.delete().where(orgs_t.c.id == org_id))
            return bool(result.rowcount)

    async def _delete_batch(self, table: sa.Table, org_id: int) -> int:
        batch = sa.select(table.c.id).where(table.c.org_id == org_id).limit(DELETE_BATCH).scalar_subquery()
        async with self.db.write() as conn:
            result = await conn.execute(table.delete().where(table.c.id.in_(batch)))
            return int(result.rowcount or 0)
