"""hourly-rss-fetch: fetch every due active feed, record each outcome, queue a crawl job per new article URL."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from mediabeat.crawler.feeds import FeedParseError, ParsedFeed, parse_fast, parse_robust
from mediabeat.crawler.http import FetchError, FetchResult, SafeClient, retry_after_seconds
from mediabeat.crawler.urls import BadUrl, canonicalize, url_hash
from mediabeat.db.stores.feeds import FeedStore, FeedUpdate
from mediabeat.db.stores.jobs import JobStore, NewJob
from mediabeat.domain.content import FeedRecord
from mediabeat.tasks.base import RunContext, unless_all_failed
from mediabeat.telemetry import FEED_FETCH_DURATION, FEED_FETCHES, timed

# The task runs hourly: a failing feed is tried again after 1, 2, 4, ... hours, at most a day apart.
BACKOFF_BASE = timedelta(hours=1)
BACKOFF_MAX = timedelta(hours=24)
# Leave slack so "back in an hour" is due at the next hourly run, not just after it.
BACKOFF_SLACK = timedelta(minutes=5)


def feed_backoff(failures: int) -> timedelta:
    """How long a feed that failed `failures` times in a row rests before the next try."""
    if failures <= 1:
        return timedelta(0)
    return min(BACKOFF_BASE * (1 << min(failures - 2, 10)), BACKOFF_MAX) - BACKOFF_SLACK


@dataclass
class FeedOutcome:
    feed: FeedRecord
    update: FeedUpdate
    outcome: str  # fetched | not_modified | failed | disabled
    links: list[str] = field(default_factory=list)
    error_kind: str | None = None
    # The date each entry gave, by link (entries without one are absent): the crawl job keeps it.
    published: dict[str, datetime] = field(default_factory=dict)


class RssFetch:
    """The hourly-rss-fetch handler."""

    def __init__(
        self,
        *,
        feeds: FeedStore,
        jobs: JobStore,
        client_factory: Callable[[], SafeClient],
        max_failures: int,
        concurrency: int,
        job_max_attempts: int,
    ) -> None:
        self.feeds = feeds
        self.jobs = jobs
        self.client_factory = client_factory
        self.max_failures = max_failures
        self.concurrency = concurrency
        self.job_max_attempts = job_max_attempts

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        due = await self.feeds.due(now=ctx.now)
        semaphore = asyncio.Semaphore(self.concurrency)
        outcomes: list[FeedOutcome] = []
        writer = OutcomeWriter(self, ctx.now)
        async with self.client_factory() as client:

            async def one(feed: FeedRecord) -> FeedOutcome:
                async with semaphore:
                    with timed(FEED_FETCH_DURATION):
                        outcome = await self.fetch_feed(client, feed, ctx.now)
                FEED_FETCHES.labels(outcome.outcome).inc()
                return outcome

            # Feeds come ordered by organisation; all organisations share the per-host limits.
            # Outcomes are written in batches while the other feeds are still being fetched: the
            # database works (SQLite in its own thread, PostgreSQL in its own process) while this
            # loop fetches and parses, instead of all of it after the last feed.
            fetches = [asyncio.create_task(one(feed)) for feed in due]
            try:
                for finished in asyncio.as_completed(fetches):
                    outcome = await finished
                    outcomes.append(outcome)
                    writer.add(outcome)
                created = await writer.finish()
            finally:
                for fetch in fetches:  # a run cancelled (timeout, shutdown) stops its fetches too
                    fetch.cancel()
                await writer.abandon()
        links = sum(len(o.links) for o in outcomes)
        counts = Counter(o.outcome for o in outcomes)
        errors = Counter(o.error_kind for o in outcomes if o.error_kind)
        result: dict[str, Any] = {
            "orgs": len({f.org_id for f in due}),
            "feeds": len(due),
            "fetched": counts["fetched"],
            "not_modified": counts["not_modified"],
            "failed": counts["failed"] + counts["disabled"],
            "disabled": counts["disabled"],
            "moved": sum(1 for o in outcomes if o.update.url != o.feed.url),
            "entries": links,
            "jobs_created": created,
            "errors": dict(sorted(errors.items())),
        }
        ctx.log.info(
            "hourly-rss-fetch: %d feeds, %d fetched, %d not modified, %d failed, %d disabled, %d jobs created",
            result["feeds"],
            result["fetched"],
            result["not_modified"],
            result["failed"],
            result["disabled"],
            created,
        )
        first_failure = next((o for o in outcomes if o.outcome in ("failed", "disabled")), None)
        first_error = first_failure.update.last_error or first_failure.error_kind if first_failure else None
        return unless_all_failed(
            result, attempted=len(due), failed=result["failed"], unit="feeds", first_error=first_error
        )

    async def fetch_feed(self, client: SafeClient, feed: FeedRecord, now: datetime) -> FeedOutcome:
        """Fetch and parse one feed; every failure becomes a recorded outcome, never an exception."""
        headers: dict[str, str] = {
            "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"
        }
        if feed.etag:
            headers["If-None-Match"] = feed.etag
        if feed.last_modified:
            headers["If-Modified-Since"] = feed.last_modified
        try:
            response = await client.get(feed.url, headers=headers)
        except FetchError as exc:
            return self._failure(feed, now, status=exc.kind.value, error=str(exc))
        new_url = response.permanent_url or feed.url
        if response.status == 304:
            return FeedOutcome(feed, self._success(feed, now, response, new_url, status="not_modified"), "not_modified")
        if response.status == 410:
            update = self._base(feed, now, url=new_url, status="gone", error="410 Gone: the feed was removed")
            update = replace(update, active=False, disabled_reason="410 Gone: the publisher removed this feed")
            return FeedOutcome(feed, update, "disabled", error_kind="gone")
        if response.status >= 400 or response.status < 200:
            wait = retry_after_seconds(response.headers.get("retry-after"))
            return self._failure(
                feed,
                now,
                status=f"http_{response.status}",
                error=f"HTTP {response.status} from {response.url}",
                url=new_url,
                not_before=now + timedelta(seconds=min(wait, BACKOFF_MAX.total_seconds())) if wait else None,
            )
        try:
            parsed = await _parse(response)
        except FeedParseError as exc:
            return self._failure(feed, now, status=exc.kind.value, error=str(exc), url=new_url)
        links: list[str] = []
        published: dict[str, datetime] = {}
        seen: set[str] = set()
        for entry in parsed.entries:
            try:
                canonical = canonicalize(entry.link)
            except BadUrl:
                continue
            if canonical not in seen:
                seen.add(canonical)
                links.append(canonical)
                if entry.published_at is not None:
                    published[canonical] = entry.published_at
        update = self._success(feed, now, response, new_url, status="ok")
        update = replace(
            update,
            title=feed.title or parsed.title,
            site_url=parsed.site_url or feed.site_url,
            last_error=parsed.warning,
        )
        return FeedOutcome(feed, update, "fetched", links=links, published=published)

    def _base(self, feed: FeedRecord, now: datetime, *, url: str, status: str, error: str | None) -> FeedUpdate:
        return FeedUpdate(
            id=feed.id,
            url=url,
            title=feed.title,
            site_url=feed.site_url,
            active=feed.active,
            etag=feed.etag,
            last_modified=feed.last_modified,
            last_fetched_at=now,
            last_status=status,
            last_error=error,
            consecutive_failures=feed.consecutive_failures,
            next_fetch_at=None,
            disabled_reason=feed.disabled_reason,
        )

    def _success(self, feed: FeedRecord, now: datetime, response: FetchResult, url: str, *, status: str) -> FeedUpdate:
        update = self._base(feed, now, url=url, status=status, error=None)
        etag = response.headers.get("etag") or (feed.etag if response.status == 304 else None)
        modified = response.headers.get("last-modified") or (feed.last_modified if response.status == 304 else None)
        return replace(
            update,
            etag=etag[:500] if etag else None,
            last_modified=modified[:100] if modified else None,
            consecutive_failures=0,
        )

    def _failure(
        self,
        feed: FeedRecord,
        now: datetime,
        *,
        status: str,
        error: str,
        url: str | None = None,
        not_before: datetime | None = None,
    ) -> FeedOutcome:
        failures = feed.consecutive_failures + 1
        update = self._base(feed, now, url=url or feed.url, status=status, error=error)
        update = replace(update, consecutive_failures=failures)
        if failures >= self.max_failures:
            reason = f"disabled after {failures} consecutive failures; last: {error}"
            return FeedOutcome(
                feed, replace(update, active=False, disabled_reason=reason), "disabled", error_kind=status
            )
        next_at = now + feed_backoff(failures)
        if not_before is not None and not_before > next_at:
            next_at = not_before
        return FeedOutcome(
            feed, replace(update, next_fetch_at=next_at if next_at > now else None), "failed", error_kind=status
        )


async def _parse(response: FetchResult) -> ParsedFeed:
    fast = parse_fast(response.body, url=response.url, details=False)  # only the links and dates are used
    if fast is not None:
        return fast
    # feedparser takes tens of milliseconds: keep it off the event loop so other fetches keep flowing.
    return await asyncio.to_thread(parse_robust, response.body, url=response.url, content_type=response.content_type)


class OutcomeWriter:
    """Writes feed outcomes and their new jobs in batches, one batch at a time, in the background."""

    FEEDS_PER_BATCH = 100
    JOBS_PER_BATCH = 5000

    def __init__(self, fetch: RssFetch, now: datetime) -> None:
        self.fetch = fetch
        self.now = now
        self.created = 0
        self._outcomes: list[FeedOutcome] = []
        self._links = 0
        self._lock = asyncio.Lock()  # batches go in order, and never two at once on one connection pool
        self._writes: list[asyncio.Task[None]] = []

    def add(self, outcome: FeedOutcome) -> None:
        self._outcomes.append(outcome)
        self._links += len(outcome.links)
        if len(self._outcomes) >= self.FEEDS_PER_BATCH or self._links >= self.JOBS_PER_BATCH:
            self._start()

    async def finish(self) -> int:
        """Write what is left, wait for every batch, and return how many jobs were created."""
        self._start()
        await asyncio.gather(*self._writes)  # on a failure the others stay listed, for abandon()
        self._writes = []
        return self.created

    async def abandon(self) -> None:
        """After a failure: let batches already under way end, so no write outlives the run."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
            self._writes = []

    def _start(self) -> None:
        if self._outcomes:
            batch, self._outcomes, self._links = self._outcomes, [], 0
            self._writes.append(asyncio.create_task(self._write(batch)))

    async def _write(self, batch: list[FeedOutcome]) -> None:
        async with self._lock:
            await self.fetch.feeds.apply_updates(
                [o.update for o in batch], org_of={o.feed.id: o.feed.org_id for o in batch}, now=self.now
            )
            jobs = [
                NewJob(
                    org_id=o.feed.org_id,
                    feed_id=o.feed.id,
                    url=link,
                    url_hash=url_hash(link),
                    priority=o.feed.priority,
                    feed_published_at=o.published.get(link),
                )
                for o in batch
                for link in o.links
            ]
            self.created += await self.fetch.jobs.enqueue(jobs, now=self.now, max_attempts=self.fetch.job_max_attempts)
