"""Articles: what crawl-queue stored, listed, searched by title, read one at a time, and extracted again."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from mediabeat.crawler.urls import article_canonical_url
from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.raw_pages import RawPage, RawPageScope, RawPageStore
from mediabeat.domain.content import (
    ArticleFilter,
    ArticleNotFound,
    ArticleRecord,
    ReextractCounts,
    ReextractFilter,
)
from mediabeat.domain.ids import clamp_id, valid_id

if TYPE_CHECKING:
    from mediabeat.crawler.articles import Extracted

# Articles re-extracted per batch: read, extracted (in parallel on the pool) and written together.
# Memory stays bounded by one batch of pages (each at most MEDIABEAT_RAW_HTML_MAX_BYTES).
REEXTRACT_BATCH = 50


class Extractor(Protocol):
    """What re-extraction needs of crawler.articles.ExtractionPool."""

    async def extract(self, html: bytes, url: str, *, feed_published_at: datetime | None = None) -> Extracted: ...

    def shutdown(self) -> None: ...


class ArticleService:
    """Read access to articles, and their re-extraction from kept raw HTML (crawl-queue writes them)."""

    def __init__(
        self,
        *,
        store: ArticleStore,
        raw_pages: RawPageStore | None = None,
        extractor: Callable[[], Extractor] | None = None,
    ) -> None:
        self.store = store
        self.raw_pages = raw_pages
        self.extractor = extractor

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

    async def reextract(
        self,
        query: ReextractFilter,
        *,
        batch_size: int = REEXTRACT_BATCH,
        progress: Callable[[ReextractCounts], None] | None = None,
    ) -> ReextractCounts:
        """Extract the articles in `query` again from their kept HTML with today's extraction, and store what changed.

        Only the article's own fields change (title, text, author, dates, language, canonical URL,
        summary) and with them the search index. Story clusters and monitors are not run again:
        a monitor would alert a second time on an old article. `progress` sees the counts after
        each batch.
        """
        assert self.raw_pages is not None and self.extractor is not None, "built without raw pages or extractor"
        scope = RawPageScope(since=query.since, org_id=query.org_id, feed_id=query.feed_id)
        counts = ReextractCounts(no_raw_html=await self.raw_pages.count_without_page(scope))
        extractor = self.extractor()
        try:
            after_id, remaining = 0, query.limit
            while remaining is None or remaining > 0:
                size = batch_size if remaining is None else min(batch_size, remaining)
                batch = await self.raw_pages.batch_after(scope, after_id=after_id, limit=size)
                if not batch:
                    break
                after_id = batch[-1][0].id
                remaining = None if remaining is None else remaining - len(batch)
                counts = await self._reextract_batch(batch, extractor, counts)
                if progress is not None:
                    progress(counts)
        finally:
            await asyncio.to_thread(extractor.shutdown)
        return counts

    async def _reextract_batch(
        self, batch: Sequence[tuple[ArticleRecord, RawPage]], extractor: Extractor, counts: ReextractCounts
    ) -> ReextractCounts:
        fresh = await asyncio.gather(*(_changed_fields(article, page, extractor) for article, page in batch))
        changes = [(article.id, fields) for (article, _), fields in zip(batch, fresh, strict=True) if fields]
        failed = sum(1 for fields in fresh if fields is None)
        await self.store.update_extracted(changes)
        return replace(
            counts,
            reextracted=counts.reextracted + len(changes),
            unchanged=counts.unchanged + len(batch) - len(changes) - failed,
            failed=counts.failed + failed,
        )


async def _changed_fields(article: ArticleRecord, page: RawPage, extractor: Extractor) -> dict[str, Any] | None:
    """The fields whose fresh extraction differs from what is stored ({} for none); None when extraction failed."""
    from mediabeat.crawler.articles import ExtractionError

    try:
        html = await asyncio.to_thread(page.html)
        extracted = await extractor.extract(html, page.url, feed_published_at=page.feed_published_at)
    except (ExtractionError, zlib.error):
        return None
    fresh = {
        "canonical_url": article_canonical_url(extracted.canonical_url, page.url),
        "title": extracted.title,
        "author": extracted.author,
        "published_at": extracted.published_at,
        "summary": extracted.summary,
        "text": extracted.text,
        "language": extracted.language,
    }
    return {name: value for name, value in fresh.items() if getattr(article, name) != value}
