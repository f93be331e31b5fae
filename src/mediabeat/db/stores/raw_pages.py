"""Kept raw HTML (article_raw_pages): written in the articles' own transaction, read back to re-extract.

Bodies are zlib-compressed (the standard library's; level 6, its default): news pages shrink to
about a fifth, and compressing one takes about a millisecond, off the event loop.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from mediabeat.db.engine import Database
from mediabeat.db.stores.rows import record_of
from mediabeat.db.tables import article_raw_pages as raw_t
from mediabeat.db.tables import articles as articles_t
from mediabeat.domain.content import ArticleRecord

COMPRESSION = "zlib"
ZLIB_LEVEL = 6


@dataclass(frozen=True, slots=True)
class RawPage:
    """A page's HTML as kept: compressed `body`, `size` bytes before compression, and what its extraction needs."""

    url: str  # where the body came from, after redirects (the extraction's base URL)
    content_type: str | None
    feed_published_at: datetime | None
    size: int
    body: bytes
    compression: str = COMPRESSION

    def html(self) -> bytes:
        """The page's bytes as they were fetched."""
        return zlib.decompress(self.body)


def pack_page(
    html: bytes, *, url: str, content_type: str | None, feed_published_at: datetime | None, max_bytes: int
) -> RawPage | None:
    """`html` compressed for keeping, or None when larger than `max_bytes` (not kept). CPU-bound: run it in a thread."""
    if len(html) > max_bytes:
        return None
    return RawPage(
        url=url,
        content_type=content_type,
        feed_published_at=feed_published_at,
        size=len(html),
        body=zlib.compress(html, ZLIB_LEVEL),
    )


def _values(article_id: int, page: RawPage, now: datetime) -> dict[str, Any]:
    return {
        "article_id": article_id,
        "fetched_at": now,
        "url": page.url,
        "content_type": (page.content_type or None) and page.content_type[:200],
        "feed_published_at": page.feed_published_at,
        "compression": page.compression,
        "size": page.size,
        "body": page.body,
    }


async def write_raw_pages(
    conn: AsyncConnection, pages: Sequence[tuple[int, RawPage]], *, now: datetime, is_postgres: bool
) -> None:
    """Insert or replace the kept pages of these articles, in the caller's transaction (the articles' batch)."""
    if not pages:
        return
    rows = {article_id: _values(article_id, page, now) for article_id, page in pages}  # the last one wins
    insert = (postgresql.insert if is_postgres else sqlite.insert)(raw_t)
    excluded = insert.excluded
    statement = insert.on_conflict_do_update(
        index_elements=["article_id"], set_={k: excluded[k] for k in _values(0, pages[0][1], now) if k != "article_id"}
    )
    await conn.execute(statement, list(rows.values()))


@dataclass(frozen=True, slots=True)
class RawPageScope:
    """Which articles a re-extraction covers: fetched at or after `since`, of one org or feed."""

    since: datetime | None = None
    org_id: int | None = None
    feed_id: int | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        conditions: list[sa.ColumnElement[bool]] = []
        if self.since is not None:
            conditions.append(articles_t.c.fetched_at >= self.since)
        if self.org_id is not None:
            conditions.append(articles_t.c.org_id == self.org_id)
        if self.feed_id is not None:
            conditions.append(articles_t.c.feed_id == self.feed_id)
        return conditions


def _raw_page(row: sa.Row[Any]) -> RawPage:
    mapping = row._mapping
    return RawPage(**{name: mapping[f"raw_{name}"] for name in RawPage.__slots__})


class RawPageStore:
    """article_raw_pages: read kept pages with their articles in id order, count articles without one."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, article_id: int) -> RawPage | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(raw_t).where(raw_t.c.article_id == article_id))).first()
        return record_of(RawPage, row) if row else None

    async def batch_after(
        self, scope: RawPageScope, *, after_id: int, limit: int
    ) -> list[tuple[ArticleRecord, RawPage]]:
        """Up to `limit` articles in scope with a kept page and an id above `after_id`, in id order."""
        kept = [c.label(f"raw_{c.name}") for c in raw_t.c if c.name not in {"article_id", "fetched_at"}]
        query = (
            sa.select(articles_t, *kept)
            .join(raw_t, raw_t.c.article_id == articles_t.c.id)
            .where(articles_t.c.id > after_id, *scope.where())
            .order_by(articles_t.c.id)
            .limit(limit)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [(record_of(ArticleRecord, row), _raw_page(row)) for row in rows]

    async def count_without_page(self, scope: RawPageScope) -> int:
        """How many articles in scope have no kept page (never kept, too large, or past its retention)."""
        kept = sa.select(raw_t.c.article_id).where(raw_t.c.article_id == articles_t.c.id).exists()
        query = sa.select(sa.func.count()).select_from(articles_t).where(~kept, *scope.where())
        async with self.db.read() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def stats(self) -> tuple[int, int, int]:
        """Kept pages, their bytes before compression and as stored."""
        query = sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(raw_t.c.size), 0),
            sa.func.coalesce(sa.func.sum(sa.func.length(raw_t.c.body)), 0),
        )
        async with self.db.read() as conn:
            count, size, stored = (await conn.execute(query)).one()
        return int(count), int(size), int(stored)
