"""Monitor deliveries: each message to a webhook or a mailbox, its attempts and its outcome."""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.tables import monitor_deliveries as deliveries_t
from mediabeat.domain.monitors import DeliveryChannel, DeliveryKind, DeliveryRecord, DeliveryStatus

ERROR_LIMIT = 2_000
_COLUMNS = [deliveries_t.c[name] for name in DeliveryRecord.__slots__]


def _record(row: sa.Row[Any]) -> DeliveryRecord:
    values = dict(row._mapping)
    values["channel"] = DeliveryChannel(values["channel"])
    values["kind"] = DeliveryKind(values["kind"])
    values["status"] = DeliveryStatus(values["status"])
    return DeliveryRecord(**values)


class DeliveryStore:
    """monitor_deliveries: queue a message, claim the due ones atomically, record each attempt."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def enqueue(
        self,
        *,
        monitor_id: int,
        org_id: int,
        channels: builtins.list[DeliveryChannel],
        kind: DeliveryKind,
        payload: dict[str, Any],
        now: datetime,
    ) -> None:
        rows = [
            {
                "monitor_id": monitor_id,
                "org_id": org_id,
                "channel": channel.value,
                "kind": kind.value,
                "status": DeliveryStatus.PENDING.value,
                "payload": payload,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for channel in channels
        ]
        if rows:
            async with self.db.write() as conn:
                await conn.execute(deliveries_t.insert(), rows)

    async def claim_due(self, *, now: datetime, limit: int, lease: timedelta) -> builtins.list[DeliveryRecord]:
        """Take up to `limit` due deliveries in one statement; each counts an attempt and is leased till now + lease."""
        due = (
            sa.select(deliveries_t.c.id)
            .where(deliveries_t.c.status == DeliveryStatus.PENDING.value, deliveries_t.c.next_attempt_at <= now)
            .order_by(deliveries_t.c.next_attempt_at, deliveries_t.c.id)
            .limit(limit)
        )
        if self.db.is_postgres:
            due = due.with_for_update(skip_locked=True)
        statement = (
            deliveries_t.update()
            .where(deliveries_t.c.id.in_(due.scalar_subquery()))
            .values(attempts=deliveries_t.c.attempts + 1, next_attempt_at=now + lease)
            .returning(*_COLUMNS)
        )
        async with self.db.write() as conn:
            return sorted((_record(row) for row in await conn.execute(statement)), key=lambda d: d.id)

    async def record_sent(self, delivery_id: int, *, now: datetime) -> None:
        await self._set(delivery_id, status=DeliveryStatus.SENT.value, sent_at=now, next_attempt_at=None)

    async def record_failure(self, delivery_id: int, *, error: str, retry_at: datetime | None) -> None:
        """A failed attempt: tried again at `retry_at`, or given up (status failed) when it is None."""
        status = DeliveryStatus.PENDING if retry_at is not None else DeliveryStatus.FAILED
        await self._set(delivery_id, status=status.value, last_error=error[:ERROR_LIMIT], next_attempt_at=retry_at)

    async def _set(self, delivery_id: int, **values: Any) -> None:
        async with self.db.write() as conn:
            await conn.execute(deliveries_t.update().where(deliveries_t.c.id == delivery_id).values(**values))

    async def list(self, monitor_id: int, *, limit: int = 50) -> builtins.list[DeliveryRecord]:
        query = (
            sa.select(*_COLUMNS)
            .where(deliveries_t.c.monitor_id == monitor_id)
            .order_by(deliveries_t.c.id.desc())
            .limit(limit)
        )
        async with self.db.read() as conn:
            return [_record(row) for row in await conn.execute(query)]
