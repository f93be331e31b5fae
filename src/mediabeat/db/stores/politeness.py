"""Per-host politeness shared by every crawling process: the host_politeness and host_slots tables.

The crawler's HostLimiter uses this as its shared layer (crawler.http.limiter.SharedPoliteness).
Each request is one short write transaction: lock the host's row, drop its expired slot leases,
and, when a slot is free, take it and move the host's next start one spacing further.

Whose clock: on PostgreSQL the database's (`clock_timestamp()`, read in the statement, after the
row lock is held), so machines whose clocks disagree still space their requests correctly; on
SQLite the machine's (`julianday('now')`, read under the write lock): every process of a SQLite
database runs on that one machine. Either way the caller is told how many seconds to wait, never
a time to compare with its own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from mediabeat.db.engine import Database, describe_db_error
from mediabeat.db.tables import host_politeness as hosts_t
from mediabeat.db.tables import host_slots as slots_t

# A Crawl-delay read from robots.txt holds for everyone this long (robots.txt is read again hourly).
CRAWL_DELAY_TTL_S = 3600.0
# A start is reserved at most this far ahead (or one spacing, when longer): see crawler.http.limiter.
HORIZON_S = 1.0
# At most this many of a process's politeness calls use a connection at once on PostgreSQL; the
# others wait their turn. A feed pass runs a hundred fetches at once: without the bound, their
# calls would take the pool's overflow connections, each opened and closed again for one call.
MAX_CONCURRENT_CALLS = 4


class PolitenessUnavailable(ConnectionError):
    """The shared politeness state cannot be used (the database is down, or lacks the tables)."""


@dataclass(frozen=True, slots=True)
class HostState:
    """A host's shared politeness row as read under its lock; times in seconds since the epoch."""

    now: float
    next_start_at: float
    cooldown_until: float
    crawl_delay_s: float
    crawl_delay_until: float


@dataclass(frozen=True, slots=True)
class StartPlan:
    """What one request may do: start in `wait` seconds (granted), or ask again after `wait` seconds."""

    granted: bool
    wait: float
    next_start_at: float = 0.0  # when granted: the host's next start after this one
    spacing: float = 0.0  # the spacing in force: the request's, or the host's shared Crawl-delay when longer


def plan_start(state: HostState, *, busy: int, limit: int, spacing: float, horizon: float = HORIZON_S) -> StartPlan:
    """Decide a request's start from the host's state; pure, so the tests can walk it through any clock."""
    shared_delay = state.crawl_delay_s if state.crawl_delay_until > state.now else 0.0
    in_force = max(spacing, shared_delay)
    if busy >= limit:
        return StartPlan(False, 0.0, spacing=in_force)
    start = max(state.now, state.next_start_at, state.cooldown_until)
    ahead = start - state.now
    reach = max(horizon, in_force)
    if ahead > reach:
        return StartPlan(False, ahead - reach, spacing=in_force)
    return StartPlan(True, ahead, start + in_force, in_force)


class PolitenessStore:
    """The shared layer of crawler.http.limiter.HostLimiter, on the service's database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = postgresql.insert if db.is_postgres else sqlite.insert
        self._calls: asyncio.Semaphore | None = None  # made on first use, in the running loop

    def _now(self) -> sa.ColumnElement[float]:
        if self.db.is_postgres:
            return sa.cast(sa.extract("epoch", sa.func.clock_timestamp()), sa.Double())
        return (sa.func.julianday("now") - 2440587.5) * 86400.0

    async def acquire(
        self, host: str, *, holder: str, limit: int, spacing: float, crawl_delay: float | None, lease: float
    ) -> tuple[bool, float, float]:
        try:
            if self.db.is_postgres:
                return await self._acquire_postgres(host, holder, limit, spacing, crawl_delay, lease)
            async with self.db.write() as conn:
                state, busy = await self._lock_host(conn, host)
                if crawl_delay is not None:
                    state = HostState(
                        state.now, state.next_start_at, state.cooldown_until, crawl_delay, state.now + CRAWL_DELAY_TTL_S
                    )
                plan = plan_start(state, busy=busy, limit=limit, spacing=spacing)
                if plan.granted:
                    start = state.now + plan.wait
                    await conn.execute(slots_t.insert().values(host=host, holder=holder, expires_at=start + lease))
                    await conn.execute(
                        hosts_t.update()
                        .where(hosts_t.c.host == host)
                        .values(
                            next_start_at=plan.next_start_at,
                            crawl_delay_s=state.crawl_delay_s,
                            crawl_delay_until=state.crawl_delay_until,
                        )
                    )
                return plan.granted, plan.wait, plan.spacing
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise PolitenessUnavailable(describe_db_error(self.db.url, exc)) from None

    async def _acquire_postgres(
        self, host: str, holder: str, limit: int, spacing: float, crawl_delay: float | None, lease: float
    ) -> tuple[bool, float, float]:
        """The same decision in one round trip: mediabeat_take_host_slot (migration 0017), in autocommit.

        The host's shared Crawl-delay comes back in the same statement, as the row stood before the
        call (the statement's snapshot; the function's own writes come after it): with this call's
        own `crawl_delay`, the spacing in force."""
        statement = sa.text(
            "SELECT t.granted, t.wait, CASE WHEN h.crawl_delay_until > extract(epoch FROM clock_timestamp()) "
            "THEN h.crawl_delay_s ELSE 0 END AS shared_delay FROM mediabeat_take_host_slot("
            ":host, :holder, :limit, :spacing, :crawl_delay, :lease, :horizon, :delay_ttl) AS t "
            "LEFT JOIN host_politeness AS h ON h.host = :host"
        ).bindparams(sa.bindparam("crawl_delay", type_=sa.Double()))
        params = {
            "host": host,
            "holder": holder,
            "limit": limit,
            "spacing": float(spacing),
            "crawl_delay": crawl_delay,
            "lease": float(lease),
            "horizon": HORIZON_S,
            "delay_ttl": CRAWL_DELAY_TTL_S,
        }
        async with self._autocommit() as conn:
            granted, wait, shared_delay = (await conn.execute(statement, params)).one()
        in_force = max(float(spacing), float(shared_delay or 0.0), float(crawl_delay or 0.0))
        return bool(granted), float(wait), in_force

    @contextlib.asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection whose every statement is its own transaction (PostgreSQL): one round trip each."""
        if self._calls is None:
            self._calls = asyncio.Semaphore(MAX_CONCURRENT_CALLS)
        async with self._calls, self.db.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def _lock_host(self, conn: AsyncConnection, host: str) -> tuple[HostState, int]:
        """The host's row, created when missing, locked to the end of the transaction (row or write lock),
        and how many of its slot leases are live; one statement, as each one is a round trip."""
        now = self._now()
        live = (
            sa.select(sa.func.count())
            .select_from(slots_t)
            .where(slots_t.c.host == host, slots_t.c.expires_at >= now)
            .scalar_subquery()
        )
        insert = self._insert(hosts_t)
        statement = (
            insert.values(
                host=host,
                next_start_at=0.0,
                cooldown_until=0.0,
                crawl_delay_s=0.0,
                crawl_delay_until=0.0,
                updated_at=now,
            )
            .on_conflict_do_update(index_elements=["host"], set_={"updated_at": now})
            .returning(
                hosts_t.c.updated_at,
                hosts_t.c.next_start_at,
                hosts_t.c.cooldown_until,
                hosts_t.c.crawl_delay_s,
                hosts_t.c.crawl_delay_until,
                live,
            )
        )
        *state, busy = (await conn.execute(statement)).one()
        return HostState(*(float(value) for value in state)), int(busy)

    async def release(self, host: str, *, holder: str) -> None:
        """Delete the lease, and any of the host's that ran out (acquire only leaves those out of its count)."""
        ended = sa.or_(slots_t.c.holder == holder, slots_t.c.expires_at < self._now())
        await self._write(slots_t.delete().where(slots_t.c.host == host, ended))

    async def cool_down(self, host: str, seconds: float) -> None:
        now = self._now()
        until = now + max(seconds, 0.0)
        insert = self._insert(hosts_t)
        await self._write(
            insert.values(
                host=host,
                next_start_at=0.0,
                cooldown_until=until,
                crawl_delay_s=0.0,
                crawl_delay_until=0.0,
                updated_at=now,
            ).on_conflict_do_update(
                index_elements=["host"],
                set_={
                    "cooldown_until": sa.case(
                        (hosts_t.c.cooldown_until > insert.excluded.cooldown_until, hosts_t.c.cooldown_until),
                        else_=insert.excluded.cooldown_until,
                    ),
                    "updated_at": now,
                },
            )
        )

    async def _write(self, statement: Any) -> None:
        """One statement as its own transaction: in autocommit on PostgreSQL, under the write lock on SQLite."""
        try:
            writing = self._autocommit() if self.db.is_postgres else self.db.write()
            async with writing as conn:
                await conn.execute(statement)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise PolitenessUnavailable(describe_db_error(self.db.url, exc)) from None
