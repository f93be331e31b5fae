"""The story clusterer: sketches stored articles and places each in a cluster, on arrival and in a rebuild.

The LSH index lives in the database (article_bands), not in this process: every worker that
stores articles reads and writes the same index, and the store serialises assignments per
organisation (see StoryStore.assign), so copies stored by two workers at once end in one cluster.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence

from mediabeat.clock import Clock
from mediabeat.db.stores.articles import NewArticle
from mediabeat.db.stores.stories import StoryStore
from mediabeat.domain.stories import ArticleSketch, RebuildResult
from mediabeat.stories.sketch import article_text, place, sketch_text

log = logging.getLogger(__name__)

REBUILD_BATCH = 200


def sketch_articles(items: Sequence[tuple[int, str | None, str | None, str | None]]) -> list[ArticleSketch]:
    """Sketches of (article id, title, summary, text) rows: CPU only, run in a thread."""
    out = []
    for article_id, title, summary, text in items:
        sketch = sketch_text(article_text(title, summary, text))
        out.append(ArticleSketch(article_id=article_id, signature=sketch.signature, bands=sketch.bands))
    return out


class StoryClusterer:
    """Places articles in story clusters: `on_stored` for crawl-queue's batches, `rebuild` for existing articles."""

    def __init__(self, *, store: StoryStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def on_stored(self, stored: Sequence[tuple[int, NewArticle]]) -> None:
        """crawl-queue's on_stored hook: cluster a stored batch, one transaction per organisation."""
        by_org: dict[int, list[tuple[int, str | None, str | None, str | None]]] = defaultdict(list)
        for article_id, article in stored:
            by_org[article.org_id].append((article_id, article.title, article.summary, article.text))
        for org_id, items in by_org.items():
            await self.cluster(org_id, items)

    async def cluster(self, org_id: int, items: Sequence[tuple[int, str | None, str | None, str | None]]) -> list[int]:
        """Sketch and place articles of one organisation; returns their cluster ids, in order."""
        sketches = await asyncio.to_thread(sketch_articles, items)
        return await self.store.assign(org_id, sketches, now=self.clock.now(), place=place)

    async def rebuild(self, org_id: int, *, batch: int = REBUILD_BATCH, clear: bool = True) -> RebuildResult:
        """Cluster the organisation's articles afresh (oldest first), REBUILD_BATCH a transaction.

        With `clear` the organisation's clusters are forgotten first; without, only articles that
        have none are placed (resuming a rebuild that was stopped). Articles that workers store
        meanwhile are clustered by them and skipped here.
        """
        if clear:
            await self.store.clear(org_id)
        done, after = 0, 0
        while rows := await self.store.unclustered(org_id, after_id=after, limit=batch):
            await self.cluster(org_id, [(int(r.id), r.title, r.summary, r.text) for r in rows])
            done += len(rows)
            after = int(rows[-1].id)
        clusters = await self.store.count_clusters(org_id)
        log.info("stories rebuild: organisation %d, %d articles clustered, %d stories", org_id, done, clusters)
        return RebuildResult(org_id=org_id, articles=done, clusters=clusters)
