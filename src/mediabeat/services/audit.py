"""The audit record: every mutation, from the API or the CLI, says who did what to what."""

from __future__ import annotations

from typing import Any

from mediabeat.clock import Clock
from mediabeat.db.stores.audit import AuditStore
from mediabeat.domain.content import Actor, AuditFilter, AuditRecord


class AuditService:
    """Writes and reads audit events; the other content services call `record` after each change."""

    def __init__(self, *, store: AuditStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def record(
        self,
        actor: Actor,
        action: str,
        *,
        target_type: str | None = None,
        target_id: str | int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """One event; the actor's channel (session or token) goes into details as `via`."""
        extra = dict(details or {})
        if actor.via is not None:
            extra.setdefault("via", actor.via)
        await self.store.record(
            actor=actor.name,
            actor_user_id=actor.user_id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            details=extra or None,
            ip=actor.ip,
            now=self.clock.now(),
        )

    async def list(self, query: AuditFilter) -> list[AuditRecord]:
        """Events, newest first."""
        return await self.store.list(
            limit=query.limit,
            before_id=query.before_id,
            action=query.action,
            actor=query.actor,
            target_type=query.target_type,
            target_id=query.target_id,
        )
