"""The story clusterer: sketches stored articles and places each in a cluster, on arrival, in a sweep and in a rebuild.

The LSH index lives in the database (article_bands), not in this process: every worker that
stores articles reads and writes the same index, and the store serialises assignments per
organisation (see StoryStore.assign_counted), so copies stored by two workers at once end in one cluster.

Each stored article carries a "not yet clustered" marker (story_pending), written with the
article and deleted with its placement, so it is placed exactly once per store: by its crawl
hook, or, when the storing process died or its hook failed, by `catch_up_all` (the sweep of the
monitor-deliveries task, every minute, on any node), once the marker is SETTLE old.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from mediabeat.clock import Clock
from mediabeat.db.stores.articles import NewArticle
from mediabeat.db.stores.stories import StoryStore
from mediabeat.domain.stories import ArticleSketch, RebuildResult
from mediabeat.stories.sketch import article_text, place, sketch_text

log = logging.getLogger(__name__)

REBUILD_BATCH = 200
# A marker this old is swept: its crawl hook (which runs a batch or two behind the write) is not coming.
SETTLE = timedelta(seconds=60)
# Articles a sweep places at most, over every organisation: a backlog is worked off over several runs.
SWEEP_LIMIT = 5_000

Row = tuple[int, str | None, str | None, str | None]


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
        by_org: dict[int, list[Row]] = defaultdict(list)
        for article_id, article in stored:
            by_org[article.org_id].append((article_id, article.title, article.summary, article.text))
        for org_id, items in by_org.items():
            await self.cluster(org_id, items)

    async def cluster(self, org_id: int, items: Sequence[Row]) -> list[int]:
        """Sketch and place articles of one organisation; returns their cluster ids, in order."""
        clusters, _ = await self._place(org_id, items)
        return clusters

    async def _place(self, org_id: int, items: Sequence[Row]) -> tuple[list[int], int]:
        sketches = await asyncio.to_thread(sketch_articles, items)
        return await self.store.assign_counted(org_id, sketches, now=self.clock.now(), place=place)

    async def catch_up_all(self, *, settle: timedelta = SETTLE, limit: int = SWEEP_LIMIT) -> int:
        """Place the articles whose crawl hook never did (the sweep); returns how many were placed here."""
        before = self.clock.now() - settle
        placed = 0
        for org_id in await self.store.orgs_pending(stored_before=before):
            if placed >= limit:
                break
            placed += await self.catch_up(org_id, stored_before=before, limit=limit - placed)
        if placed:
            log.info("story clusters: %d articles a crawl hook left were placed", placed)
        return placed

    async def catch_up(self, org_id: int, *, stored_before: datetime, limit: int = SWEEP_LIMIT) -> int:
        """Place `org_id`'s articles marked pending since before `stored_before`, REBUILD_BATCH a transaction."""
        placed, after = 0, 0
        while placed < limit:
            rows = await self.store.pending(
                org_id, stored_before=stored_before, after_id=after, limit=min(REBUILD_BATCH, limit - placed)
            )
            if not rows:
                break
            placed += (await self._place(org_id, [(int(r.id), r.title, r.summary, r.text) for r in rows]))[1]
            after = int(rows[-1].id)
        return placed

    async def rebuild(self, org_id: int, *, batch: int = REBUILD_BATCH, clear: bool = True) -> RebuildResult:
        """Cluster the organisation's articles afresh (oldest first), REBUILD_BATCH a transaction.

        With `clear` the organisation's clusters are forgotten first; without, only articles that
        have none are placed (resuming a rebuild that was stopped). Articles that workers store
        meanwhile are clustered by them and skipped here.
        """
        done, after = 0, 0
        if clear:
            await self.store.clear(org_id)
        else:  # resuming: first what is marked pending (stored afresh since it was placed, or never placed)
            done = await self.catch_up(org_id, stored_before=self.clock.now(), limit=2**62)
        while rows := await self.store.unclustered(org_id, after_id=after, limit=batch):
            done += (await self._place(org_id, [(int(r.id), r.title, r.summary, r.text) for r in rows]))[1]
            after = int(rows[-1].id)
        clusters = await self.store.count_clusters(org_id)
        log.info("stories rebuild: organisation %d, %d articles clustered, %d stories", org_id, done, clusters)
        return RebuildResult(org_id=org_id, articles=done, clusters=clusters)
