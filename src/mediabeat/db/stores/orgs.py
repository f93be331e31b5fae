"""Organisations: the tenants that own feeds, articles and crawl jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.tables import organizations as orgs_t


class OrgExists(Exception):
    """An organisation with this name already exists."""


@dataclass(frozen=True, slots=True)
class OrgRecord:
    id: int
    name: str
    is_demo: bool
    created_at: datetime

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> OrgRecord:
        return cls(**{name: row._mapping[name] for name in cls.__slots__})


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
        return OrgRecord.from_row(row)

    async def get(self, org_id: int) -> OrgRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(orgs_t).where(orgs_t.c.id == org_id))).first()
        return OrgRecord.from_row(row) if row else None

    async def get_by_name(self, name: str) -> OrgRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(orgs_t).where(orgs_t.c.name == name.strip()))).first()
        return OrgRecord.from_row(row) if row else None

    async def list(self) -> list[OrgRecord]:
        async with self.db.read() as conn:
            rows = await conn.execute(sa.select(orgs_t).order_by(orgs_t.c.id))
            return [OrgRecord.from_row(r) for r in rows]

    async def delete(self, org_id: int) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(orgs_t.delete().where(orgs_t.c.id == org_id))
            return bool(result.rowcount)
