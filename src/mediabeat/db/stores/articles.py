"""Articles: the pages crawl-queue fetched and extracted."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mediabeat.db.engine import Database
from mediabeat.db.stores.raw_pages import RawPage, write_raw_pages
from mediabeat.db.stores.rows import record_of
from mediabeat.db.tables import articles as articles_t
from mediabeat.db.tables import story_pending as story_pending_t
from mediabeat.domain.content import ArticleRecord


@dataclass(frozen=True, slots=True)
class NewArticle:
    org_id: int
    feed_id: int | None
    url: str
    url_hash: str
    canonical_url: str | None
    title: str | None
    author: str | None
    published_at: datetime | None
    summary: str | None
    text: str | None
    language: str | None


_COLUMNS = (
    "org_id",
    "feed_id",
    "url",
    "canonical_url",
    "url_hash",
    "title",
    "author",
    "published_at",
    "summary",
    "text",
    "language",
    "fetched_at",
    "created_at",
)


def _values(article: NewArticle, now: datetime) -> dict[str, Any]:
    return {
        "org_id": article.org_id,
        "feed_id": article.feed_id,
        "url": article.url,
        "canonical_url": article.canonical_url,
        "url_hash": article.url_hash,
        "title": article.title,
        "author": article.author,
        "published_at": article.published_at,
        "summary": article.summary,
        "text": article.text,
        "language": article.language,
        "fetched_at": now,
        "created_at": now,
    }


class ArticleStore:
    """articles: store (idempotent per org and URL), list newest first, get one."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._statement: Any = None

    async def save(self, article: NewArticle, *, now: datetime) -> int:
        """Insert or refresh the article of (org, url_hash); returns its id."""
        return (await self.save_many([article], now=now))[0]

    async def save_many(
        self, batch: Sequence[NewArticle], *, now: datetime, raw_pages: Sequence[RawPage | None] = ()
    ) -> builtins.list[int]:
        """Insert or refresh many articles in one transaction; returns their ids, in order.

        `raw_pages`, when given, holds each article's kept HTML (None: not kept), written in the
        same transaction; so is each article's "not yet clustered" marker (story_pending).
        """
        if not batch:
            return []
        rows = {(a.org_id, a.url_hash): _values(a, now) for a in batch}  # one row per key: the last wins
        ids: dict[tuple[int, str], int] = {}
        statement = self._upsert()
        async with self.db.write() as conn:
            result = await conn.execute(statement, list(rows.values()))
            ids.update({(org_id, h): int(article_id) for article_id, org_id, h in result})
            kept = [
                (ids[(a.org_id, a.url_hash)], page)
                for a, page in zip(batch, raw_pages or [None] * len(batch), strict=True)
                if page is not None
            ]
            await write_raw_pages(conn, kept, now=now, is_postgres=self.db.is_postgres)
            await conn.execute(
                self._mark_pending(), [{"article_id": i, "org_id": o, "stored_at": now} for (o, _), i in ids.items()]
            )
        return [ids[(a.org_id, a.url_hash)] for a in batch]

    async def update_extracted(self, changes: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
        """Write re-extracted fields (title, text, ...) of many articles in one transaction.

        The search index follows by itself (FTS5 triggers on SQLite, a generated column on PostgreSQL).
        """
        if not changes:
            return
        async with self.db.write() as conn:
            for article_id, values in changes:
                await conn.execute(articles_t.update().where(articles_t.c.id == article_id).values(**values))

    def _mark_pending(self) -> Any:
        """Each stored article is marked "not yet clustered" with its write (story_pending, mediabeat.stories).

        The clusterer deletes the marker when it places the article; an article stored afresh is
        marked again (and placed afresh, its text may have changed).
        """
        insert = (postgresql.insert if self.db.is_postgres else sqlite.insert)(story_pending_t)
        return insert.on_conflict_do_update(
            index_elements=["article_id"], set_={"stored_at": insert.excluded.stored_at}
        )

    def _upsert(self) -> Any:
        """The insert-or-refresh statement, built once (building `excluded` is costly)."""
        if self._statement is None:
            insert = postgresql.insert if self.db.is_postgres else sqlite.insert
            statement = insert(articles_t)
            excluded = statement.excluded
            update = {k: excluded[k] for k in _COLUMNS if k not in {"org_id", "url_hash", "created_at"}}
            self._statement = statement.on_conflict_do_update(
                index_elements=["org_id", "url_hash"], set_=update
            ).returning(articles_t.c.id, articles_t.c.org_id, articles_t.c.url_hash)
        return self._statement

    async def list(
        self,
        *,
        org_id: int | None = None,
        feed_id: int | None = None,
        limit: int = 50,
        before_id: int | None = None,
        title: str | None = None,
    ) -> builtins.list[ArticleRecord]:
        """Newest first; `title` keeps those whose title contains it, ignoring case."""
        query = sa.select(articles_t).order_by(articles_t.c.id.desc()).limit(limit)
        if title:
            query = query.where(articles_t.c.title.icontains(title, autoescape=True))
        if org_id is not None:
            query = query.where(articles_t.c.org_id == org_id)
        if feed_id is not None:
            query = query.where(articles_t.c.feed_id == feed_id)
        if before_id is not None:
            query = query.where(articles_t.c.id < before_id)
        async with self.db.read() as conn:
            return [record_of(ArticleRecord, r) for r in await conn.execute(query)]

    async def get(self, article_id: int) -> ArticleRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(articles_t).where(articles_t.c.id == article_id))).first()
        return record_of(ArticleRecord, row) if row else None

    async def count(self, *, org_id: int | None = None, title: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(articles_t)
        if org_id is not None:
            query = query.where(articles_t.c.org_id == org_id)
        if title:
            query = query.where(articles_t.c.title.icontains(title, autoescape=True))
        async with self.db.read() as conn:
            return int((await conn.execute(query)).scalar_one())
