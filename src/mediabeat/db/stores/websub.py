"""websub_subscriptions: one feed's subscription to its hub, its secret and its state.

websub_unsubscriptions: subscriptions being ended. `retire` moves a subscription there, in the
caller's transaction, when its feed is deleted or disabled, its organisation removed or its hub changed.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from mediabeat.db.engine import Database
from mediabeat.db.stores.rows import record_of
from mediabeat.db.tables import UTCDateTime, feeds
from mediabeat.db.tables import websub_subscriptions as subs_t
from mediabeat.db.tables import websub_unsubscriptions as unsubs_t
from mediabeat.domain.websub import (
    SubscriptionRecord,
    SubscriptionState,
    UnsubscribeReason,
    UnsubscribeState,
    UnsubscriptionRecord,
)

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


_UNSUB_CHANGEABLE = frozenset({"state", "attempts", "next_attempt_at", "last_error"})
REASON_LIMIT = 200


def _hub_may_push(table: sa.Table) -> sa.ColumnElement[bool]:
    """A subscription the hub may hold: verified, or asked for (a request went out) and not refused."""
    asked = sa.and_(
        table.c.state.in_([SubscriptionState.PENDING.value, SubscriptionState.EXPIRED.value]), table.c.attempts > 0
    )
    return sa.or_(table.c.state == SubscriptionState.VERIFIED.value, asked)


async def retire(
    conn: AsyncConnection, condition: sa.ColumnElement[bool], reason: str | sa.ColumnElement[str], *, now: datetime
) -> int:
    """End the subscriptions matching `condition` in the caller's transaction; returns how many the hub must hear of.

    Those the hub may hold are copied to websub_unsubscriptions (websub-renew asks the hub to stop
    and the callback confirms only those); every matching row is deleted, so pushes get 410 at once.
    """
    why = sa.literal(reason, sa.String()) if isinstance(reason, str) else reason
    source = sa.select(
        subs_t.c.org_id,
        subs_t.c.feed_id,
        subs_t.c.hub,
        subs_t.c.topic,
        subs_t.c.callback_token,
        sa.func.substr(why, 1, REASON_LIMIT),
        sa.literal(UnsubscribeState.PENDING.value, sa.String()),
        sa.literal(0, sa.Integer()),
        sa.literal(now, UTCDateTime()),
        sa.literal(now, UTCDateTime()),
        sa.literal(now, UTCDateTime()),
    ).where(condition, _hub_may_push(subs_t))
    columns = ["org_id", "feed_id", "hub", "topic", "callback_token", "reason", "state", "attempts"]
    columns += ["next_attempt_at", "created_at", "updated_at"]
    copied = await conn.execute(unsubs_t.insert().from_select(columns, source))
    await conn.execute(subs_t.delete().where(condition))
    return max(0, copied.rowcount or 0)


def _unsub(row: sa.Row[Any]) -> UnsubscriptionRecord:
    record = record_of(UnsubscriptionRecord, row)
    object.__setattr__(record, "state", UnsubscribeState(record.state))
    return record


@dataclass(frozen=True, slots=True)
class UnsubscribeKeys:
    """A subscription being ended, with its callback token (to build the callback URL we ask the hub to drop)."""

    record: UnsubscriptionRecord
    callback_token: str


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
        feed keeps advertising the same hub and topic; when they change, the old subscription is
        retired (the old hub is asked to stop) and a new one, with a new token and secret, starts.
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
                    added = statement.on_conflict_do_nothing(index_elements=["feed_id"]).returning(subs_t.c.id)
                    changed += len((await conn.execute(added)).all())  # rowcount is -1 here with psycopg
                elif known[sub.feed_id] != (sub.hub, sub.topic):
                    await retire(conn, subs_t.c.feed_id == sub.feed_id, UnsubscribeReason.HUB_CHANGED.value, now=now)
                    statement = insert(subs_t).values(org_id=sub.org_id, feed_id=sub.feed_id, created_at=now, **values)
                    await conn.execute(statement)
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

    async def for_feeds(self, feed_ids: Iterable[int]) -> dict[int, SubscriptionRecord]:
        """The subscriptions of these feeds, by feed id (feeds without a hub are absent)."""
        ids, out = builtins.list(feed_ids), {}
        async with self.db.read() as conn:
            for first in range(0, len(ids), DISCOVERY_BATCH):
                query = sa.select(subs_t).where(subs_t.c.feed_id.in_(ids[first : first + DISCOVERY_BATCH]))
                out.update({row.feed_id: _state(row) for row in await conn.execute(query)})
        return out

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

    async def retire_disabled(self, *, now: datetime) -> int:
        """End the subscriptions of disabled feeds (by a user, or by a 410); returns how many the hubs must hear of."""
        disabled = sa.select(feeds.c.id).where(feeds.c.active.is_(False))
        why = sa.literal(UnsubscribeReason.FEED_DISABLED.value + ": ", sa.String()) + sa.func.coalesce(
            sa.select(feeds.c.disabled_reason).where(feeds.c.id == subs_t.c.feed_id).scalar_subquery(), ""
        )
        async with self.db.write() as conn:
            return await retire(conn, subs_t.c.feed_id.in_(disabled), why, now=now)

    async def by_unsubscribe_token(self, token: str) -> UnsubscribeKeys | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(unsubs_t).where(unsubs_t.c.callback_token == token))).first()
        return UnsubscribeKeys(_unsub(row), row.callback_token) if row is not None else None

    async def due_unsubscriptions(self, *, now: datetime, limit: int) -> builtins.list[UnsubscribeKeys]:
        """Unsubscriptions whose next request (first, or a retry) is due, oldest first."""
        query = (
            sa.select(unsubs_t)
            .where(unsubs_t.c.next_attempt_at.is_not(None), unsubs_t.c.next_attempt_at <= now)
            .order_by(unsubs_t.c.next_attempt_at, unsubs_t.c.id)
            .limit(limit)
        )
        async with self.db.read() as conn:
            return [UnsubscribeKeys(_unsub(row), row.callback_token) for row in await conn.execute(query)]

    async def update_unsubscription(self, unsub_id: int, changes: Mapping[str, object], *, now: datetime) -> None:
        unknown = set(changes) - _UNSUB_CHANGEABLE
        if unknown:
            raise ValueError(f"websub_unsubscriptions has no changeable column {sorted(unknown)}")
        values = dict(changes)
        if isinstance(values.get("last_error"), str):
            values["last_error"] = str(values["last_error"])[:ERROR_LIMIT]
        async with self.db.write() as conn:
            await conn.execute(sa.update(unsubs_t).where(unsubs_t.c.id == unsub_id).values(**values, updated_at=now))

    async def unsubscriptions(self, *, org_id: int | None = None) -> builtins.list[UnsubscriptionRecord]:
        query = sa.select(unsubs_t).order_by(unsubs_t.c.id)
        if org_id is not None:
            query = query.where(unsubs_t.c.org_id == org_id)
        async with self.db.read() as conn:
            return [_unsub(row) for row in await conn.execute(query)]

    async def forget_ended(self, *, before: datetime) -> int:
        """Delete unsubscriptions confirmed or given up before `before` (pushes to them get 410 all the same)."""
        ended = [UnsubscribeState.CONFIRMED.value, UnsubscribeState.GIVEN_UP.value]
        async with self.db.write() as conn:
            result = await conn.execute(
                unsubs_t.delete().where(unsubs_t.c.state.in_(ended), unsubs_t.c.updated_at < before)
            )
            return int(result.rowcount or 0)
