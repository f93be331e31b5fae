"""Articles: what crawl-queue stored, listed, searched by title and read one at a time."""

from __future__ import annotations

from mediabeat.db.stores.articles import ArticleStore
from mediabeat.domain.content import ArticleFilter, ArticleNotFound, ArticleRecord
from mediabeat.domain.ids import clamp_id, valid_id


class ArticleService:
    """Read access to articles (they are written by the crawl-queue task, not through here)."""

    def __init__(self, *, store: ArticleStore) -> None:
        self.store = store

    async def list(self, query: ArticleFilter) -> list[ArticleRecord]:
        """Articles newest first; a blank title filter is no filter."""
        return await self.store.list(
            org_id=query.org_id,
            feed_id=query.feed_id,
            limit=query.limit,
            before_id=None if query.before_id is None else clamp_id(query.before_id),
            title=(query.title or "").strip() or None,
        )

    async def count(self, *, org_id: int | None = None, title: str | None = None) -> int:
        return await self.store.count(org_id=org_id, title=(title or "").strip() or None)

    async def find(self, article_id: int) -> ArticleRecord | None:
        return await self.store.get(article_id) if valid_id(article_id) else None

    async def get(self, article_id: int) -> ArticleRecord:
        article = await self.find(article_id)
        if article is None:
            raise ArticleNotFound(article_id)
        return article
