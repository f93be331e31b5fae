"""Monitors: the saved queries of each organisation, and what a delivery needs to know about them."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from mediabeat.db.engine import Database
from mediabeat.db.tables import articles as articles_t
from mediabeat.db.tables import monitors as monitors_t
from mediabeat.domain.monitors import Digest, MonitorRecord

_RECORD_COLUMNS = [monitors_t.c[name] for name in MonitorRecord.__slots__]


@dataclass(frozen=True, slots=True)
class ActiveMonitor:
    """What the matcher compiles: the query, and the first article id it may match."""

    id: int
    query: str
    start_after_article_id: int


def _record(row: Any) -> MonitorRecord:
    values = dict(row._mapping)
    values["digest"] = Digest(values["digest"])
    return MonitorRecord(**{name: values[name] for name in MonitorRecord.__slots__})


class MonitorStore:
    """monitors: create (one name per org), read, change (each change bumps `version`), delete."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, values: dict[str, Any], *, now: datetime) -> MonitorRecord | None:
        """Insert a monitor that starts after the org's newest article; None when the org has the name already."""
        newest = sa.select(sa.func.coalesce(sa.func.max(articles_t.c.id), 0)).where(
            articles_t.c.org_id == values["org_id"]
        )
        try:
            async with self.db.write() as conn:
                start = int((await conn.execute(newest)).scalar_one())
                row = (
                    await conn.execute(
                        monitors_t.insert()
                        .values(**values, start_after_article_id=start, version=1, created_at=now, updated_at=now)
                        .returning(*_RECORD_COLUMNS)
                    )
                ).one()
        except IntegrityError:
            return None
        return _record(row)

    async def get(self, monitor_id: int) -> MonitorRecord | None:
        return await self._one(monitors_t.c.id == monitor_id)

    async def by_name(self, org_id: int, name: str) -> MonitorRecord | None:
        return await self._one(sa.and_(monitors_t.c.org_id == org_id, monitors_t.c.name == name))

    async def by_feed_token_hash(self, token_hash: str) -> MonitorRecord | None:
        return await self._one(monitors_t.c.feed_token_hash == token_hash)

    async def _one(self, where: Any) -> MonitorRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(*_RECORD_COLUMNS).where(where))).first()
        return _record(row) if row else None

    async def list(self, *, org_id: int | None = None) -> builtins.list[MonitorRecord]:
        query = sa.select(*_RECORD_COLUMNS).order_by(monitors_t.c.org_id, monitors_t.c.name)
        if org_id is not None:
            query = query.where(monitors_t.c.org_id == org_id)
        async with self.db.read() as conn:
            return [_record(row) for row in await conn.execute(query)]

    async def change(self, monitor_id: int, values: dict[str, Any], *, now: datetime) -> MonitorRecord | None:
        """Apply `values` and bump the version (so every process recompiles the org's monitors)."""
        statement = (
            monitors_t.update()
            .where(monitors_t.c.id == monitor_id)
            .values(**values, version=monitors_t.c.version + 1, updated_at=now)
            .returning(*_RECORD_COLUMNS)
        )
        async with self.db.write() as conn:
            row = (await conn.execute(statement)).first()
        return _record(row) if row else None

    async def mark_delivered(self, monitor_id: int, *, now: datetime, spike: bool = False) -> None:
        """Start the cool-down (or, for a spike alert, the hour without another); not a version change."""
        column = "last_spike_at" if spike else "last_delivered_at"
        async with self.db.write() as conn:
            await conn.execute(monitors_t.update().where(monitors_t.c.id == monitor_id).values({column: now}))

    async def delete(self, monitor_id: int) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(monitors_t.delete().where(monitors_t.c.id == monitor_id))
        return bool(result.rowcount)

    async def webhook_secret(self, monitor_id: int) -> str | None:
        async with self.db.read() as conn:
            query = sa.select(monitors_t.c.webhook_secret).where(monitors_t.c.id == monitor_id)
            return (await conn.execute(query)).scalar_one_or_none()

    async def org_version(self, org_id: int) -> tuple[int, int, int]:
        """A key that changes whenever the org's monitors do: (count, newest id, sum of versions)."""
        query = sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.max(monitors_t.c.id), 0),
            sa.func.coalesce(sa.func.sum(monitors_t.c.version), 0),
        ).where(monitors_t.c.org_id == org_id)
        async with self.db.read() as conn:
            count, newest, versions = (await conn.execute(query)).one()
        return int(count), int(newest), int(versions)

    async def active_for_org(self, org_id: int) -> builtins.list[ActiveMonitor]:
        query = sa.select(monitors_t.c.id, monitors_t.c.query, monitors_t.c.start_after_article_id).where(
            monitors_t.c.org_id == org_id, monitors_t.c.active.is_(True)
        )
        async with self.db.read() as conn:
            return [ActiveMonitor(int(i), q, int(s)) for i, q, s in await conn.execute(query)]

    async def with_pending(self) -> builtins.list[tuple[MonitorRecord, int, datetime]]:
        """Active monitors with a webhook or an address and undelivered matches: how many, and the oldest's time.

        Only monitors that deliver are looked at (through the partial index on undelivered
        matches), so the undelivered matches of feed-only monitors cost nothing here.
        """
        from mediabeat.db.tables import monitor_matches as matches_t

        delivering = sa.select(monitors_t.c.id).where(
            monitors_t.c.active.is_(True),
            sa.or_(monitors_t.c.webhook_url.is_not(None), monitors_t.c.email.is_not(None)),
        )
        pending = (
            sa.select(
                matches_t.c.monitor_id,
                sa.func.count().label("pending"),
                sa.func.min(matches_t.c.matched_at).label("oldest"),
            )
            .where(matches_t.c.delivered_at.is_(None), matches_t.c.monitor_id.in_(delivering.scalar_subquery()))
            .group_by(matches_t.c.monitor_id)
            .subquery()
        )
        query = sa.select(*_RECORD_COLUMNS, pending.c.pending, pending.c.oldest).join(
            pending, pending.c.monitor_id == monitors_t.c.id
        )
        async with self.db.read() as conn:
            rows = list(await conn.execute(query))
        return [(_record(row), int(row.pending), row.oldest) for row in rows]

    async def with_spike_alerts(self) -> builtins.list[MonitorRecord]:
        query = sa.select(*_RECORD_COLUMNS).where(monitors_t.c.active.is_(True), monitors_t.c.spike_alerts.is_(True))
        async with self.db.read() as conn:
            return [_record(row) for row in await conn.execute(query)]
