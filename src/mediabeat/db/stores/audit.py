"""The audit record: who did what, to what, when and from where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.stores.rows import record_of
from mediabeat.db.tables import audit_events as audit_t
from mediabeat.domain.content import AuditRecord


class AuditStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(
        self,
        *,
        actor: str,
        action: str,
        now: datetime,
        actor_user_id: int | None = None,
        target_type: str | None = None,
        target_id: str | int | None = None,
        details: dict[str, Any] | None = None,
        ip: str | None = None,
    ) -> int:
        async with self.db.write() as conn:
            event_id = (
                await conn.execute(
                    audit_t.insert()
                    .values(
                        actor_user_id=actor_user_id,
                        actor=actor,
                        action=action,
                        target_type=target_type,
                        target_id=None if target_id is None else str(target_id),
                        details=details,
                        ip=ip,
                        created_at=now,
                    )
                    .returning(audit_t.c.id)
                )
            ).scalar_one()
            return int(event_id)

    async def list(
        self,
        *,
        limit: int = 50,
        before_id: int | None = None,
        action: str | None = None,
        actor: str | None = None,
        target_type: str | None = None,
        target_id: str | None = None,
    ) -> list[AuditRecord]:
        """Events, newest first; page on with before_id = the last id of the previous page."""
        query = sa.select(audit_t).order_by(audit_t.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(audit_t.c.id < before_id)
        if action is not None:
            query = query.where(audit_t.c.action == action)
        if actor is not None:
            query = query.where(audit_t.c.actor == actor)
        if target_type is not None:
            query = query.where(audit_t.c.target_type == target_type)
        if target_id is not None:
            query = query.where(audit_t.c.target_id == target_id)
        async with self.db.read() as conn:
            return [record_of(AuditRecord, r) for r in await conn.execute(query)]
