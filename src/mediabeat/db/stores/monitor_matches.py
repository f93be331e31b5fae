"""Monitor matches and the matching watermark: what each monitor matched, once, and what is left to match."""

from __future__ import annotations

import builtins
import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mediabeat.db.engine import Database
from mediabeat.db.tables import UTCDateTime
from mediabeat.db.tables import articles as articles_t
from mediabeat.db.tables import monitor_cursors as cursors_t
from mediabeat.db.tables import monitor_matches as matches_t
from mediabeat.db.tables import monitor_scanned as scanned_t
from mediabeat.domain.monitors import MonitorMatch, MonitorMatchDoc

_DOC_COLUMNS = [articles_t.c[name] for name in MonitorMatchDoc.__slots__]
_MATCH_COLUMNS = [
    matches_t.c.id,
    matches_t.c.monitor_id,
    matches_t.c.article_id,
    matches_t.c.matched_at,
    matches_t.c.delivered_at,
    articles_t.c.url,
    articles_t.c.title,
    articles_t.c.published_at,
    articles_t.c.summary,
]
# Inserting many (first, second) id pairs in one statement.
# The WHERE true keeps SQLite from reading ON CONFLICT as a join's ON.
_SQLITE_PAIRS = "SELECT json_extract(j.value, '$[0]') AS first, json_extract(j.value, '$[1]') AS second \
FROM json_each(:pairs) AS j WHERE true"
_POSTGRES_PAIRS = "SELECT t.first, t.second FROM unnest(:firsts, :seconds) AS t(first, second)"
_MATCHES = (
    "INSERT INTO monitor_matches (monitor_id, org_id, article_id, matched_at) SELECT p.first, :org_id, p.second, :now "
    "FROM ({pairs}) AS p {where}ON CONFLICT (monitor_id, article_id) DO NOTHING RETURNING monitor_id"
)
_SCANNED = (
    "INSERT INTO monitor_scanned (article_id, org_id) SELECT p.first, :org_id FROM ({pairs}) AS p {where}"
    "ON CONFLICT (article_id) DO NOTHING"
)
_INSERT_MATCHES = {
    "sqlite": _MATCHES.format(pairs=_SQLITE_PAIRS, where="WHERE true "),
    "postgresql": _MATCHES.format(pairs=_POSTGRES_PAIRS, where=""),
}
_INSERT_SCANNED = {
    "sqlite": _SCANNED.format(pairs=_SQLITE_PAIRS, where="WHERE true "),
    "postgresql": _SCANNED.format(pairs=_POSTGRES_PAIRS, where=""),
}
# Rows per statement when streaming an export: one page in memory at a time.
EXPORT_PAGE = 1_000


def _match(row: sa.Row[Any]) -> MonitorMatch:
    return MonitorMatch(**row._mapping)


class MatchStore:
    """monitor_matches, monitor_scanned and monitor_cursors."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self) -> Any:
        return postgresql.insert if self.db.is_postgres else sqlite.insert

    async def cursor(self, org_id: int) -> int:
        async with self.db.read() as conn:
            query = sa.select(cursors_t.c.last_article_id).where(cursors_t.c.org_id == org_id)
            return int((await conn.execute(query)).scalar_one_or_none() or 0)

    async def unscanned(self, org_id: int, *, after_id: int, limit: int) -> builtins.list[MonitorMatchDoc]:
        """The org's articles above the watermark that no batch has matched yet, oldest first."""
        query = (
            sa.select(*_DOC_COLUMNS)
            .outerjoin(scanned_t, scanned_t.c.article_id == articles_t.c.id)
            .where(articles_t.c.org_id == org_id, articles_t.c.id > after_id, scanned_t.c.article_id.is_(None))
            .order_by(articles_t.c.id)
            .limit(limit)
        )
        async with self.db.read() as conn:
            return [MonitorMatchDoc(**row._mapping) for row in await conn.execute(query)]

    async def record_scan(
        self, org_id: int, article_ids: Sequence[int], matches: Sequence[tuple[int, int]], *, now: datetime
    ) -> int:
        """Mark articles matched and record their (monitor id, article id) matches once each; returns the new ones.

        Each is one statement whatever the batch's size: the pairs go in as one JSON array
        (SQLite) or two arrays (PostgreSQL), not as a row of parameters each. A batch of 50
        articles has about 900 matches with 10,000 monitors (bench/monitor_bench.py): written
        as an executemany they were half of the matcher's time on SQLite.
        """
        new = 0
        async with self.db.write() as conn:
            if matches:
                result = await conn.execute(self._insert_pairs(_INSERT_MATCHES, org_id, matches, now))
                new = len(result.all())
            if article_ids:
                pairs = [(a, a) for a in article_ids]
                await conn.execute(self._insert_pairs(_INSERT_SCANNED, org_id, pairs, now))
        return new

    def _insert_pairs(self, sql: dict[str, str], org_id: int, pairs: Sequence[tuple[int, int]], now: datetime) -> Any:
        dialect = "postgresql" if self.db.is_postgres else "sqlite"
        params: list[sa.BindParameter[Any]] = [sa.bindparam("org_id", org_id)]
        if ":now" in sql[dialect]:
            params.append(sa.bindparam("now", now, type_=UTCDateTime()))
        if self.db.is_postgres:
            firsts, seconds = [int(p[0]) for p in pairs], [int(p[1]) for p in pairs]
            params += [
                sa.bindparam("firsts", firsts, type_=postgresql.ARRAY(sa.BigInteger())),
                sa.bindparam("seconds", seconds, type_=postgresql.ARRAY(sa.BigInteger())),
            ]
        else:
            params.append(sa.bindparam("pairs", json.dumps([[int(a), int(b)] for a, b in pairs])))
        return sa.text(sql[dialect]).bindparams(*params)

    async def advance_cursor(self, org_id: int, *, floor: int, settled_before: datetime, now: datetime) -> int:
        """Move the watermark past every article that is matched and old enough that no write before it is pending.

        On PostgreSQL ids are handed out before commit, so an article with a smaller id can
        appear after a larger one; an article created `settled_before` or earlier cannot
        still be in flight (a store transaction lasts milliseconds), so the watermark stops at
        the first article that is unmatched or younger than that.
        """
        current = max(await self.cursor(org_id), floor)
        blocker = (
            sa.select(sa.func.min(articles_t.c.id))
            .outerjoin(scanned_t, scanned_t.c.article_id == articles_t.c.id)
            .where(
                articles_t.c.org_id == org_id,
                articles_t.c.id > current,
                sa.or_(scanned_t.c.article_id.is_(None), articles_t.c.created_at > settled_before),
            )
        )
        newest = sa.select(sa.func.max(articles_t.c.id)).where(articles_t.c.org_id == org_id)
        async with self.db.write() as conn:
            first_blocked = (await conn.execute(blocker)).scalar_one_or_none()
            top = (await conn.execute(newest)).scalar_one_or_none() or current
            target = max(current, int(first_blocked) - 1 if first_blocked is not None else int(top))
            values = {"org_id": org_id, "last_article_id": target, "updated_at": now}
            upsert = self._insert()(cursors_t).values(values)
            await conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=["org_id"], set_={"last_article_id": target, "updated_at": now}
                )
            )
            await conn.execute(scanned_t.delete().where(scanned_t.c.org_id == org_id, scanned_t.c.article_id <= target))
        return target

    async def orgs_behind(self) -> builtins.list[int]:
        """Organisations with monitors, for the catch-up task."""
        from mediabeat.db.tables import monitors as monitors_t

        async with self.db.read() as conn:
            return [int(o) for (o,) in await conn.execute(sa.select(monitors_t.c.org_id).distinct())]

    async def page(self, monitor_id: int, *, limit: int, before_id: int | None = None) -> builtins.list[MonitorMatch]:
        """A monitor's matches, newest first, `limit` at a time (keyset paging: no OFFSET over a million rows)."""
        query = (
            sa.select(*_MATCH_COLUMNS)
            .join(articles_t, articles_t.c.id == matches_t.c.article_id)
            .where(matches_t.c.monitor_id == monitor_id)
            .order_by(matches_t.c.id.desc())
            .limit(limit)
        )
        if before_id is not None:
            query = query.where(matches_t.c.id < before_id)
        async with self.db.read() as conn:
            return [_match(row) for row in await conn.execute(query)]

    async def stream(self, monitor_id: int) -> AsyncIterator[MonitorMatch]:
        """Every match of a monitor, newest first, read EXPORT_PAGE rows at a time."""
        before: int | None = None
        while True:
            page = await self.page(monitor_id, limit=EXPORT_PAGE, before_id=before)
            for match in page:
                yield match
            if len(page) < EXPORT_PAGE:
                return
            before = page[-1].id

    async def count(self, monitor_id: int) -> int:
        async with self.db.read() as conn:
            query = sa.select(sa.func.count()).select_from(matches_t).where(matches_t.c.monitor_id == monitor_id)
            return int((await conn.execute(query)).scalar_one())

    async def take_pending(
        self, monitor_id: int, *, now: datetime, limit: int
    ) -> tuple[builtins.list[MonitorMatch], int]:
        """Hand a monitor's undelivered matches to a delivery: the newest `limit` of them, and how many in all.

        Bounded whatever the backlog (a monitor with a million undelivered matches): the matches
        up to the newest pending one are counted and marked in the database, and only `limit`
        rows are read. A match recorded meanwhile above that id waits for the next message.
        """
        pending = sa.and_(matches_t.c.monitor_id == monitor_id, matches_t.c.delivered_at.is_(None))
        async with self.db.write() as conn:
            top = (await conn.execute(sa.select(sa.func.max(matches_t.c.id)).where(pending))).scalar_one_or_none()
            if top is None:
                return [], 0
            taken = sa.and_(pending, matches_t.c.id <= top)
            total = int((await conn.execute(sa.select(sa.func.count()).where(taken))).scalar_one())
            rows = await conn.execute(
                sa.select(*_MATCH_COLUMNS)
                .join(articles_t, articles_t.c.id == matches_t.c.article_id)
                .where(taken)
                .order_by(matches_t.c.id.desc())
                .limit(limit)
            )
            listed = [_match(row) for row in rows]
            await conn.execute(matches_t.update().where(taken).values(delivered_at=now))
            return listed, total

    async def hourly_counts(self, monitor_id: int, *, since: datetime) -> dict[str, int]:
        """The monitor's matches since `since`, counted per UTC hour ("YYYY-MM-DDTHH"), in the database."""
        if self.db.is_postgres:
            hour: Any = sa.func.to_char(
                sa.func.timezone("UTC", matches_t.c.matched_at), sa.literal_column("'YYYY-MM-DD\"T\"HH24'")
            )
        else:
            hour = sa.func.strftime("%Y-%m-%dT%H", matches_t.c.matched_at)
        query = (
            sa.select(hour.label("hour"), sa.func.count())
            .where(matches_t.c.monitor_id == monitor_id, matches_t.c.matched_at >= since)
            .group_by(sa.literal_column("hour"))
        )
        async with self.db.read() as conn:
            return {str(h): int(n) for h, n in await conn.execute(query)}
