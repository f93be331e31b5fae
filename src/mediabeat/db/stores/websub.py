"""websub_subscriptions: one feed's subscription to its hub, its secret and its state."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mediabeat.db.engine import Database
from mediabeat.db.stores.rows import record_of
from mediabeat.db.tables import websub_subscriptions as subs_t
from mediabeat.domain.websub import SubscriptionRecord, SubscriptionState

ERROR_LIMIT = 2_000
# Feeds per transaction (and per IN list, well under SQLite's 32,766 variables).
DISCOVERY_BATCH = 500
# What update() may change: everything but the ids, the org and the creation time.
_CHANGEABLE = frozenset(
    {
        "hub",
        "topic",
        "callback_token",
        "secret",
        "state",
        "lease_seconds",
        "lease_expires_at",
        "attempts",
        "next_attempt_at",
        "last_error",
        "last_push_at",
    }
)


@dataclass(frozen=True, slots=True)
class NewSubscription:
    """A feed found to advertise a hub: what record_discovered writes (secret and token made by the caller)."""

    org_id: int
    feed_id: int
    hub: str
    topic: str
    callback_token: str
    secret: str


@dataclass(frozen=True, slots=True)
class SubscriptionKeys:
    """A subscription with what only the WebSub code may read: its callback token and shared secret."""

    record: SubscriptionRecord
    callback_token: str
    secret: str


def _state(row: sa.Row[Any]) -> SubscriptionRecord:
    record = record_of(SubscriptionRecord, row)
    object.__setattr__(record, "state", SubscriptionState(record.state))
    return record


def _keys(row: sa.Row[Any]) -> SubscriptionKeys:
    return SubscriptionKeys(_state(row), row.callback_token, row.secret)


class WebSubStore:
    """Reads and writes websub_subscriptions; decisions (when to renew, what a hub may change) live above."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record_discovered(self, found: Iterable[NewSubscription], *, now: datetime) -> int:
        """Add a pending subscription per feed that has none, and restart one whose hub or topic changed.

        Returns how many rows were added or restarted. A feed keeps its row (and state) while its
        feed keeps advertising the same hub and topic.
        """
        found = list(found)
        changed = 0
        for first in range(0, len(found), DISCOVERY_BATCH):
            changed += await self._record_batch(found[first : first + DISCOVERY_BATCH], now)
        return changed

    async def _record_batch(self, found: builtins.list[NewSubscription], now: datetime) -> int:
        changed = 0
        insert = postgresql.insert if self.db.is_postgres else sqlite.insert
        async with self.db.write() as conn:
            rows = await conn.execute(
                sa.select(subs_t.c.feed_id, subs_t.c.hub, subs_t.c.topic).where(
                    subs_t.c.feed_id.in_([f.feed_id for f in found])
                )
            )
            known = {row.feed_id: (row.hub, row.topic) for row in rows}
            for sub in found:
                values = {
                    "hub": sub.hub,
                    "topic": sub.topic,
                    "callback_token": sub.callback_token,
                    "secret": sub.secret,
                    "state": SubscriptionState.PENDING.value,
                    "lease_seconds": None,
                    "lease_expires_at": None,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "last_error": None,
                    "updated_at": now,
                }
                if sub.feed_id not in known:
                    statement = insert(subs_t).values(org_id=sub.org_id, feed_id=sub.feed_id, created_at=now, **values)
                    result = await conn.execute(statement.on_conflict_do_nothing(index_elements=["feed_id"]))
                    changed += max(0, result.rowcount or 0)
                elif known[sub.feed_id] != (sub.hub, sub.topic):
                    await conn.execute(sa.update(subs_t).where(subs_t.c.feed_id == sub.feed_id).values(**values))
                    changed += 1
        return changed

    async def by_token(self, token: str) -> SubscriptionKeys | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(subs_t).where(subs_t.c.callback_token == token))).first()
        return _keys(row) if row is not None else None

    async def due(self, *, now: datetime, limit: int) -> builtins.list[SubscriptionKeys]:
        """Subscriptions whose next attempt (subscribe, retry or renewal) is due, oldest first."""
        query = (
            sa.select(subs_t)
            .where(subs_t.c.next_attempt_at.is_not(None), subs_t.c.next_attempt_at <= now)
            .order_by(subs_t.c.next_attempt_at, subs_t.c.id)
            .limit(limit)
        )
        async with self.db.read() as conn:
            return [_keys(row) for row in await conn.execute(query)]

    async def update(self, sub_id: int, changes: Mapping[str, object], *, now: datetime) -> None:
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise ValueError(f"websub_subscriptions has no changeable column {sorted(unknown)}")
        values = dict(changes)
        if isinstance(values.get("last_error"), str):
            values["last_error"] = str(values["last_error"])[:ERROR_LIMIT]
        async with self.db.write() as conn:
            await conn.execute(sa.update(subs_t).where(subs_t.c.id == sub_id).values(**values, updated_at=now))

    async def for_feed(self, feed_id: int) -> SubscriptionRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(subs_t).where(subs_t.c.feed_id == feed_id))).first()
        return _state(row) if row is not None else None

    async def list(self, *, org_id: int | None = None) -> builtins.list[SubscriptionRecord]:
        query = sa.select(subs_t).order_by(subs_t.c.id)
        if org_id is not None:
            query = query.where(subs_t.c.org_id == org_id)
        async with self.db.read() as conn:
            return [_state(row) for row in await conn.execute(query)]

    async def pushed_feed_ids(self, feed_ids: Iterable[int], *, now: datetime) -> set[int]:
        """The feeds among `feed_ids` that a hub pushes right now (verified, lease running).

        The hook for the poller: such a feed needs only a backup poll at the long interval.
        """
        ids = list(feed_ids)
        if not ids:
            return set()
        query = sa.select(subs_t.c.feed_id).where(
            subs_t.c.feed_id.in_(ids),
            subs_t.c.state == SubscriptionState.VERIFIED.value,
            subs_t.c.lease_expires_at > now,
        )
        async with self.db.read() as conn:
            return {row.feed_id for row in await conn.execute(query)}
