"""Feeds: what hourly-rss-fetch fetches, with their conditional-GET validators and failure state."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from mediabeat.db.engine import Database
from mediabeat.db.stores.rows import record_of
from mediabeat.db.stores.websub import retire
from mediabeat.db.tables import MAX_PRIORITY, MIN_PRIORITY
from mediabeat.db.tables import feeds as feeds_t
from mediabeat.db.tables import media_crawl_jobs as jobs_t
from mediabeat.db.tables import websub_subscriptions as subs_t
from mediabeat.domain.content import FeedRecord, FeedShard, JobStatus
from mediabeat.domain.websub import UnsubscribeReason

ERROR_LIMIT = 2_000
# Feeds read per statement when a whole list of due feeds is wanted at once.
DUE_PAGE = 1000
# The predicate of the partial index ix_feeds_due, written as the index writes it so that both
# planners can prove the index applies.
_ACTIVE = sa.text("active")


@dataclass(frozen=True, slots=True)
class DueCursor:
    """Where a page of due feeds ended: its last feed's next_fetch_at (None: still among the never-scheduled) and id."""

    next_fetch_at: datetime | None
    id: int

    @classmethod
    def of(cls, feed: FeedRecord) -> DueCursor:
        return cls(feed.next_fetch_at, feed.id)


@dataclass(frozen=True, slots=True)
class FeedUpdate:
    """The outcome of one fetch, written back in bulk. `url` differs from the stored one after a 301/308."""

    id: int
    url: str
    title: str | None
    site_url: str | None
    active: bool
    etag: str | None
    last_modified: str | None
    last_fetched_at: datetime
    last_status: str
    last_error: str | None
    consecutive_failures: int
    next_fetch_at: datetime | None
    disabled_reason: str | None
    # The per-feed schedule (migration 0014); the defaults leave a feed's schedule as it was not known.
    fetch_interval_s: int | None = None
    interval_reason: str | None = None
    body_hash: str | None = None
    entries_per_week: int | None = None
    last_new_entries: int | None = None
    dormant_since: datetime | None = None
    window_entries: int | None = None


_UPDATE_COLUMNS = [name for name in FeedUpdate.__slots__ if name != "id"]


class FeedStore:
    """feeds: add (no duplicates per org), list, enable/disable, delete, and the fetch task's bulk updates."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, org_id: int, url: str, *, now: datetime, title: str | None = None) -> tuple[FeedRecord, bool]:
        """Add a feed to an org; an URL the org already has is a no-op returning the existing feed (created=False)."""
        added = await self.add_many(org_id, [(url, title)], now=now)
        return added[0]

    async def add_many(
        self, org_id: int, feeds: Sequence[tuple[str, str | None]], *, now: datetime, batch_size: int = 500
    ) -> builtins.list[tuple[FeedRecord, bool]]:
        """Add several feeds (OPML import), `batch_size` per transaction; each comes back with whether it was new.

        Each batch commits on its own so that, on SQLite, other writers wait for one batch, not the whole import.
        A batch is one multi-row INSERT and one SELECT of the URLs the org had already (not a statement per
        feed: seeding 10,000 feeds took 33 s that way).
        """
        out: builtins.list[tuple[FeedRecord, bool]] = []
        for batch in _chunked(feeds, batch_size):
            async with self.db.write() as conn:
                out += await self._add_batch(conn, org_id, batch, now)
        return out

    async def _add_batch(
        self, conn: AsyncConnection, org_id: int, batch: Sequence[tuple[str, str | None]], now: datetime
    ) -> builtins.list[tuple[FeedRecord, bool]]:
        titles: dict[str, str | None] = {}
        for url, title in batch:
            titles.setdefault(url, title[:500] if title else None)
        insert = postgresql.insert if self.db.is_postgres else sqlite.insert
        values = [
            {"org_id": org_id, "url": url, "title": title, "active": True, "consecutive_failures": 0,
             "created_at": now, "updated_at": now}
            for url, title in titles.items()
        ]  # fmt: skip
        statement = insert(feeds_t).values(values).on_conflict_do_nothing(index_elements=["org_id", "url"])
        created = {row.url: record_of(FeedRecord, row) for row in await conn.execute(statement.returning(*feeds_t.c))}
        others = [url for url in titles if url not in created]
        existing: dict[str, FeedRecord] = {}
        if others:
            query = sa.select(feeds_t).where(feeds_t.c.org_id == org_id, feeds_t.c.url.in_(others))
            existing = {row.url: record_of(FeedRecord, row) for row in await conn.execute(query)}
        out: builtins.list[tuple[FeedRecord, bool]] = []
        for url, _ in batch:
            if url in created:
                out.append((created.pop(url), True))  # a repeat of the URL later in the batch finds it existing
                existing[url] = out[-1][0]
            else:
                out.append((existing[url], False))
        return out

    async def get(self, feed_id: int) -> FeedRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(feeds_t).where(feeds_t.c.id == feed_id))).first()
        return record_of(FeedRecord, row) if row else None

    async def list(self, *, org_id: int | None = None, active: bool | None = None) -> builtins.list[FeedRecord]:
        query = sa.select(feeds_t).order_by(feeds_t.c.id)
        if org_id is not None:
            query = query.where(feeds_t.c.org_id == org_id)
        if active is not None:
            query = query.where(feeds_t.c.active == active)
        async with self.db.read() as conn:
            return [record_of(FeedRecord, r) for r in await conn.execute(query)]

    async def due(self, *, now: datetime) -> builtins.list[FeedRecord]:
        """Every active feed whose next_fetch_at has passed (or was never set), grouped by org: due_page's pages."""
        out: builtins.list[FeedRecord] = []
        after: DueCursor | None = None
        while page := await self.due_page(now=now, after=after, limit=DUE_PAGE):
            out += page
            after = DueCursor.of(page[-1])
        return sorted(out, key=lambda feed: (feed.org_id, feed.id))

    async def due_page(
        self, *, now: datetime, after: DueCursor | None, limit: int, shard: FeedShard | None = None
    ) -> builtins.list[FeedRecord]:
        """Up to `limit` due active feeds after `after` (None: from the start), in (next_fetch_at, id) order.

        Never-scheduled feeds (next_fetch_at NULL) come first, by id. A keyset, not an offset: each
        page is an index range read from where the last one ended (ix_feeds_due), so a pass over N
        due feeds costs O(N) however many share one next_fetch_at, and a feed whose next_fetch_at
        this pass moves into the future is never read twice. With a `shard`, only that shard's feeds.
        """
        out: builtins.list[FeedRecord] = []
        async with self.db.read() as conn:
            if after is None or after.next_fetch_at is None:
                never = sa.select(feeds_t).where(_ACTIVE, _in(shard), feeds_t.c.next_fetch_at.is_(None))
                if after is not None:
                    never = never.where(feeds_t.c.id > after.id)
                rows = await conn.execute(never.order_by(feeds_t.c.id).limit(limit))
                out = [record_of(FeedRecord, r) for r in rows]
                after = None
            if len(out) < limit:
                query = sa.select(feeds_t).where(_ACTIVE, _in(shard), feeds_t.c.next_fetch_at <= now)
                if after is not None:
                    query = query.where(
                        sa.tuple_(feeds_t.c.next_fetch_at, feeds_t.c.id)
                        > sa.tuple_(sa.literal(after.next_fetch_at, feeds_t.c.next_fetch_at.type), after.id)
                    )
                rows = await conn.execute(query.order_by(feeds_t.c.next_fetch_at, feeds_t.c.id).limit(limit - len(out)))
                out += [record_of(FeedRecord, r) for r in rows]
        return out

    async def active_page(
        self, *, after_id: int, limit: int, shard: FeedShard | None = None
    ) -> builtins.list[FeedRecord]:
        """Up to `limit` active feeds (of `shard`, if given) with an id above `after_id`, by id, page by page."""
        query = sa.select(feeds_t).where(_ACTIVE, _in(shard), feeds_t.c.id > after_id)
        query = query.order_by(feeds_t.c.id).limit(limit)
        async with self.db.read() as conn:
            return [record_of(FeedRecord, r) for r in await conn.execute(query)]

    async def next_due_at(self, *, now: datetime) -> datetime | None:
        """The earliest time an active feed is due, `now` when one has never been fetched; None without feeds."""
        # Two lookups on the (active, next_fetch_at) index, not a count over every feed.
        active, due_at = feeds_t.c.active.is_(True), feeds_t.c.next_fetch_at
        never_fetched = sa.exists().where(active, due_at.is_(None))
        async with self.db.read() as conn:
            if (await conn.execute(sa.select(never_fetched))).scalar():
                return now
            earliest: datetime | None = (await conn.execute(sa.select(sa.func.min(due_at)).where(active))).scalar()
        return earliest

    async def set_active(
        self, feed_id: int, active: bool, *, reason: str | None = None, now: datetime | None = None
    ) -> FeedRecord | None:
        """Enable or disable a feed. Enabling clears the failure count, the backoff and the disabled reason."""
        return await self.change(feed_id, active=active, reason=reason, now=now)

    async def change(
        self,
        feed_id: int,
        *,
        active: bool | None = None,
        reason: str | None = None,
        priority: int | None = None,
        now: datetime | None = None,
    ) -> FeedRecord | None:
        """Enable or disable a feed (see set_active) and/or set its priority, 0-9; None if there is no such feed.

        Disabling retires the feed's WebSub subscription in the same transaction.

        A new priority applies to the jobs the feed queues from now on and to those still queued.
        """
        values: dict[str, Any] = {}
        if now is not None:
            values["updated_at"] = now
        if active is True:
            values.update(
                active=True, consecutive_failures=0, next_fetch_at=None, disabled_reason=None, dormant_since=None
            )
        elif active is False:
            values.update(active=False, disabled_reason=reason or "disabled by a user")
        if priority is not None:
            if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
                raise ValueError(f"priority must be {MIN_PRIORITY} to {MAX_PRIORITY}, not {priority}")
            values["priority"] = priority
        if not values:
            return await self.get(feed_id)
        async with self.db.write() as conn:
            if active is False:  # the hub is asked to stop; pushes get 410 from now on
                why = f"{UnsubscribeReason.FEED_DISABLED.value}: {values['disabled_reason']}"
                await retire(conn, subs_t.c.feed_id == feed_id, why, now=now or _utcnow())
            if priority is not None:
                await conn.execute(
                    jobs_t.update()
                    .where(jobs_t.c.feed_id == feed_id, jobs_t.c.status == JobStatus.QUEUED)
                    .values(priority=priority)
                )
            row = (
                await conn.execute(
                    feeds_t.update().where(feeds_t.c.id == feed_id).values(**values).returning(*feeds_t.c)
                )
            ).first()
        return record_of(FeedRecord, row) if row else None

    async def delete(self, feed_id: int, *, now: datetime | None = None) -> bool:
        """Delete a feed; its WebSub subscription is retired in the same transaction (the hub is asked to stop)."""
        async with self.db.write() as conn:
            await retire(conn, subs_t.c.feed_id == feed_id, UnsubscribeReason.FEED_DELETED.value, now=now or _utcnow())
            result = await conn.execute(feeds_t.delete().where(feeds_t.c.id == feed_id))
            return bool(result.rowcount)

    async def apply_updates(self, updates: Sequence[FeedUpdate], *, org_of: dict[int, int], now: datetime) -> int:
        """Write many fetch outcomes in one transaction with executemany; returns how many rows changed.

        A permanent redirect to an URL the org already has as another feed (stored, or taken
        by an earlier feed of this batch) keeps the old URL (the unique (org, url) would refuse
        it) and says so in last_error. A fetch can switch a feed off (410 Gone, too many
        failures) but never on: a feed someone disabled while it was being fetched stays so.
        """
        if not updates:
            return 0
        rows: builtins.list[dict[str, Any]] = []
        async with self.db.write() as conn:
            current = {}
            ids = [u.id for u in updates]
            for id_chunk in _chunked(ids, 500):
                result = await conn.execute(sa.select(feeds_t.c.id, feeds_t.c.url).where(feeds_t.c.id.in_(id_chunk)))
                current.update({fid: url for fid, url in result})
            moved = [u for u in updates if u.id in current and u.url != current[u.id]]
            taken = await _taken(conn, [(org_of.get(u.id, -1), u.url) for u in moved])
            for u in updates:
                if u.id not in current:
                    continue  # deleted while it was being fetched
                values = {name: getattr(u, name) for name in _UPDATE_COLUMNS}
                if u.url != current[u.id]:
                    target = (org_of.get(u.id, -1), u.url)
                    if target in taken:
                        values["url"] = current[u.id]
                        values["last_error"] = f"moved permanently to {u.url}, which this organisation already has"
                    else:
                        taken.add(target)
                if values["last_error"] is not None:
                    values["last_error"] = values["last_error"][:ERROR_LIMIT]
                if values["title"] is not None:
                    values["title"] = values["title"][:500]
                values["last_status"] = values["last_status"][:50]
                if values["interval_reason"] is not None:
                    values["interval_reason"] = values["interval_reason"][:ERROR_LIMIT]
                values["updated_at"] = now
                values["id"] = u.id
                rows.append({f"b_{k}": v for k, v in values.items()})
            if not rows:
                return 0
            assignments: dict[str, Any] = {name: sa.bindparam(f"b_{name}") for name in [*_UPDATE_COLUMNS, "updated_at"]}
            fetch_keeps_it_on = sa.bindparam("b_active", type_=sa.Boolean)
            assignments["active"] = sa.and_(feeds_t.c.active, fetch_keeps_it_on)
            assignments["disabled_reason"] = sa.case(
                (fetch_keeps_it_on, feeds_t.c.disabled_reason),
                # Typed: a bare bindparam inside CASE would skip the column type's cleaning.
                else_=sa.bindparam("b_disabled_reason", type_=feeds_t.c.disabled_reason.type),
            )
            statement = feeds_t.update().where(feeds_t.c.id == sa.bindparam("b_id")).values(assignments)
            await conn.execute(statement, rows)
        return len(rows)


async def _taken(conn: AsyncConnection, wanted: Sequence[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which of the (org_id, url) pairs a feed has already: probes of the unique (org_id, url) index.

    Only the redirected feeds of a batch are asked about: asking by URL alone, for every feed,
    scanned the whole index once per batch (a pass's cost grew with the square of the feeds).
    """
    taken: set[tuple[int, str]] = set()
    by_org: dict[int, set[str]] = {}
    for org_id, url in wanted:
        by_org.setdefault(org_id, set()).add(url)
    for org_id, urls in by_org.items():
        for chunk in _chunked(sorted(urls), 500):
            query = sa.select(feeds_t.c.url).where(feeds_t.c.org_id == org_id, feeds_t.c.url.in_(chunk))
            taken.update((org_id, url) for (url,) in await conn.execute(query))
    return taken


def _in(shard: FeedShard | None) -> sa.ColumnElement[bool]:
    """The feeds of `shard` (every feed without one)."""
    return sa.true() if shard is None else (feeds_t.c.id % shard.count) == shard.index


def _chunked(items: Sequence[Any], size: int) -> builtins.list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _utcnow() -> datetime:
    return datetime.now(UTC)
