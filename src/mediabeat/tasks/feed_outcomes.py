"""What one feed's fetch came to (FeedOutcome), a pass's counts (PassTally), and the batched writing of outcomes.

Split from rss_fetch.py, which decides each outcome; this module counts them and writes them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mediabeat.crawler.urls import url_hash
from mediabeat.db.stores.feeds import FeedUpdate
from mediabeat.domain.content import FeedRecord
from mediabeat.domain.websub import HubLinks
from mediabeat.schedule.freshness import Interval, PollResult
from mediabeat.tasks.feed_entries import crawl_jobs

if TYPE_CHECKING:
    from mediabeat.tasks.rss_fetch import RssFetch


@dataclass
class FeedOutcome:
    feed: FeedRecord
    update: FeedUpdate
    outcome: str  # fetched | not_modified | failed | disabled
    links: list[str] = field(default_factory=list)
    error_kind: str | None = None
    # The date each entry gave, by link (entries without one are absent): the crawl job keeps it.
    published: dict[str, datetime] = field(default_factory=dict)
    # A success: what the schedule needs, completed with the count of new links when written.
    poll: PollResult | None = None
    # A failure: the interval decided at once (backoff, Retry-After, dormant).
    interval: Interval | None = None
    jobs_created: int = 0
    hub: HubLinks | None = None  # the WebSub hub the feed advertises (recorded by `websub`, below)


@dataclass
class PassTally:
    """The run's counts, kept as outcomes arrive (the outcomes themselves are not kept)."""

    feeds: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    orgs: set[int] = field(default_factory=set)
    moved: int = 0
    entries: int = 0
    first_error: str | None = None

    def add(self, outcome: FeedOutcome) -> None:
        self.outcomes[outcome.outcome] += 1
        if outcome.error_kind:
            self.errors[outcome.error_kind] += 1
        self.orgs.add(outcome.feed.org_id)
        self.moved += outcome.update.url != outcome.feed.url
        self.entries += len(outcome.links)
        if self.first_error is None and outcome.outcome in ("failed", "disabled", "dormant"):
            self.first_error = outcome.update.last_error or outcome.error_kind

    def summary(self, created: int) -> dict[str, Any]:
        """The run's counts: feeds by outcome, entries seen, jobs created, errors by kind."""
        counts = self.outcomes
        return {
            "orgs": len(self.orgs),
            "feeds": self.feeds,
            "fetched": counts["fetched"],
            "not_modified": counts["not_modified"],
            "unchanged": counts["unchanged"],
            "failed": counts["failed"] + counts["disabled"] + counts["dormant"],
            "disabled": counts["disabled"],
            "dormant": counts["dormant"],
            "moved": self.moved,
            "entries": self.entries,
            "jobs_created": created,
            "errors": dict(sorted(self.errors.items())),
        }


class OutcomeWriter:
    """Writes feed outcomes and their new jobs in batches, one batch at a time, in the background.

    At most MAX_PENDING batches wait for the database: past that, add() waits for the oldest, so a
    database slower than the fetches slows the fetches instead of filling memory with outcomes.
    """

    FEEDS_PER_BATCH = 100
    JOBS_PER_BATCH = 5000
    MAX_PENDING = 4

    def __init__(
        self, fetch: RssFetch, now: datetime, *, schedule_from: datetime | None = None, record_hubs: bool = False
    ) -> None:
        self.fetch = fetch
        self.now = now
        self.schedule_from = schedule_from or now
        self.record_hubs = record_hubs
        self.created = 0
        self._outcomes: list[FeedOutcome] = []
        self._links = 0
        self._lock = asyncio.Lock()  # batches go in order, and never two at once on one connection pool
        self._writes: list[asyncio.Task[None]] = []
        self._done: list[asyncio.Task[None]] = []  # ended batches that failed, kept for finish() to raise

    async def add(self, outcome: FeedOutcome) -> None:
        self._outcomes.append(outcome)
        self._links += len(outcome.links)
        if len(self._outcomes) >= self.FEEDS_PER_BATCH or self._links >= self.JOBS_PER_BATCH:
            self._start()
        self._writes = [w for w in self._writes if not self._ended(w)]
        if len(self._writes) > self.MAX_PENDING:
            await asyncio.wait([self._writes[0]])  # a failure is raised by finish(), after the others

    def _ended(self, write: asyncio.Task[None]) -> bool:
        if not write.done():
            return False
        if write.cancelled() or write.exception() is not None:
            self._done.append(write)
        return True

    async def finish(self) -> int:
        """Write what is left, wait for every batch, and return how many jobs were created."""
        self._start()
        await asyncio.gather(*self._done, *self._writes)  # on a failure the others stay listed, for abandon()
        self._writes, self._done = [], []
        return self.created

    async def abandon(self) -> None:
        """After a failure: let batches already under way end, so no write outlives the run."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
            self._writes = []
        self._done = []

    def _start(self) -> None:
        if self._outcomes:
            batch, self._outcomes, self._links = self._outcomes, [], 0
            self._writes.append(asyncio.create_task(self._write(batch)))

    async def _write(self, batch: list[FeedOutcome]) -> None:
        async with self._lock:
            # The overlap with earlier polls: links the organisation has queued or stored already.
            pairs = [(o.feed.org_id, url_hash(link)) for o in batch for link in o.links]
            known = await self.fetch.jobs.known(pairs) if pairs else set()
            websub = self.fetch.websub
            pushed = await websub.pushed([o.feed.id for o in batch], now=self.now) if websub is not None else set()
            for o in batch:
                new = sum(1 for link in o.links if (o.feed.org_id, url_hash(link)) not in known)
                o.update = self.fetch.schedule(o, new, self.schedule_from, pushed=o.feed.id in pushed)
                o.jobs_created = new
            await self.fetch.feeds.apply_updates(
                [o.update for o in batch], org_of={o.feed.id: o.feed.org_id for o in batch}, now=self.now
            )
            jobs = [job for o in batch for job in crawl_jobs(o.feed, o.links, o.published)]
            self.created += await self.fetch.jobs.enqueue(jobs, now=self.now, max_attempts=self.fetch.job_max_attempts)
            hubs = [(o.feed, o.hub) for o in batch if o.hub is not None]
            if self.record_hubs and websub is not None and hubs:  # WebSub: note the hubs the fetched feeds advertise
                await websub.record_hubs(hubs, now=self.now)
