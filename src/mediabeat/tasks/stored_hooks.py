"""crawl-queue's on_stored hooks, run off the write path: one batch at a time, behind a short queue.

A batch's hooks (story clusters, then the monitors' matching) take longer than its write, and
when they ran inside the write-behind flush every slow hook held back the next batch's write.
Here a stored batch is handed to one background task that runs the hooks of each batch in
order; the write path waits only when MAX_WAITING batches are queued already (back-pressure:
memory stays bounded by the batches in the queue, and a crawl cannot outrun its hooks for long).

The run awaits every queued batch's hooks before it ends, also when it is cancelled (a
cancelled run still stores what it extracted, so it announces it too). What a dead process
never announced is recovered elsewhere: the monitor matcher keeps a watermark per organisation
and catches up (the next batch's hook, at most every 30 s, or the monitor-deliveries task);
articles left without a story cluster keep their "not yet clustered" marker, and the
monitor-deliveries task's sweep places them (mediabeat.stories.clusterer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from mediabeat.db.stores.articles import NewArticle

log = logging.getLogger(__name__)

# Called with the articles a batch stored, as (article id, article), once their jobs are complete:
# how search, monitors and story clusters learn of new articles as they are stored. A hook that
# raises is logged and does not fail the batch; a hook that must never miss an article keeps a
# watermark of its own and catches up from the database.
ArticlesStored = Callable[[Sequence[tuple[int, NewArticle]]], Awaitable[None]]

# Stored batches waiting for their hooks while one batch's hooks run; one more waits in the write path.
MAX_WAITING = 1


class StoredHooks:
    """Runs the hooks of each stored batch in a background task, in order, at most one batch at a time."""

    def __init__(self, hooks: Sequence[ArticlesStored], *, max_waiting: int = MAX_WAITING) -> None:
        self.hooks = tuple(hooks)
        self._queue: asyncio.Queue[Sequence[tuple[int, NewArticle]] | None] = asyncio.Queue(maxsize=max(1, max_waiting))
        self._worker: asyncio.Task[None] | None = None

    async def announce(self, stored: Sequence[tuple[int, NewArticle]]) -> None:
        """Queue a stored batch for its hooks; waits only while the queue is full."""
        if not stored or not self.hooks:
            return
        if self._worker is None or self._worker.done():  # the first batch, or a worker a BaseException ended
            self._worker = asyncio.create_task(self._run())
        await self._queue.put(stored)

    async def close(self) -> None:
        """Wait until the hooks of every queued batch have run (the run calls this before it ends)."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        if not worker.done():
            await self._queue.put(None)
        try:
            await asyncio.wait([worker])
        except asyncio.CancelledError:
            # The run is cancelled: what it stored is announced all the same (a batch or two), then it stops.
            await asyncio.wait([worker])
            raise

    async def _run(self) -> None:
        while (stored := await self._queue.get()) is not None:
            await self._call_hooks(stored)

    async def _call_hooks(self, stored: Sequence[tuple[int, NewArticle]]) -> None:
        """One batch's hooks, in order; one that fails is logged, and the batch stays stored."""
        for hook in self.hooks:
            try:
                await hook(stored)
            except Exception:
                log.exception(
                    "an on_stored hook (%s) failed for %d articles", getattr(hook, "__qualname__", hook), len(stored)
                )
