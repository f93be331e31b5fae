"""hourly-rss-fetch: fetch every due active feed, record each outcome, queue a crawl job per new article URL.

Each feed has its own schedule (src/mediabeat/schedule/freshness.py decides the interval and says why);
the task wakes every minute and fetches the feeds whose next_fetch_at has come. `ingest_body` turns a
feed body obtained some other way (a WebSub push) into crawl jobs for one feed, with the same rules.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from mediabeat.crawler.feeds import FeedParseError, ParsedFeed
from mediabeat.crawler.http import FetchError, FetchErrorKind, FetchResult, SafeClient, retry_after_seconds
from mediabeat.crawler.websub import discover_hub
from mediabeat.db.stores.feeds import DueCursor, FeedStore, FeedUpdate
from mediabeat.db.stores.jobs import JobStore
from mediabeat.domain.content import FeedRecord, FeedShard
from mediabeat.domain.scheduler import Trigger
from mediabeat.schedule.freshness import (
    FreshnessConfig,
    PollResult,
    after_failure,
    after_success,
    entries_per_week,
    rate_after_silence,
    server_floor,
    while_pushed,
)
from mediabeat.tasks.base import NothingToDo, RunContext, unless_all_failed
from mediabeat.tasks.feed_entries import entry_links, parse_feed_body
from mediabeat.tasks.feed_outcomes import FeedOutcome, OutcomeWriter, PassTally
from mediabeat.tasks.websub import HubRecorder
from mediabeat.telemetry import FEED_FETCH_DURATION, FEED_FETCHES, timed


class RssFetch:
    """The hourly-rss-fetch handler."""

    def __init__(
        self,
        *,
        feeds: FeedStore,
        jobs: JobStore,
        client_factory: Callable[[], SafeClient],
        freshness: FreshnessConfig,
        concurrency: int,
        job_max_attempts: int,
        websub: HubRecorder | None = None,
        page_size: int = 1000,
    ) -> None:
        self.feeds = feeds
        self.jobs = jobs
        self.client_factory = client_factory
        self.freshness = freshness
        self.concurrency = concurrency
        self.job_max_attempts = job_max_attempts
        self.websub = websub
        self.page_size = page_size  # feeds read per statement during a pass

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        # {"all": true} fetches every active feed now, due or not (`tasks run hourly-rss-fetch --params`).
        everything = bool(ctx.params.get("all"))
        # {"shard": "I/N"}: only the feeds whose id modulo N is I, so N tasks split a pass over the nodes.
        shard = FeedShard.parse(ctx.params.get("shard"))
        tally = PassTally()
        # Intervals count from the occurrence's time, so "an hour" is due at the next hourly occurrence.
        writer = OutcomeWriter(self, ctx.now, schedule_from=min(ctx.scheduled_for, ctx.now), record_hubs=True)
        # The feeds stream in pages through a bounded queue to `concurrency` fetchers: memory holds a
        # page or two and the fetches in flight, never every due feed (docs/benchmarks.md, "Feed pass at scale").
        queue: asyncio.Queue[FeedRecord | None] = asyncio.Queue(maxsize=2 * self.page_size)
        async with self.client_factory() as client:

            async def fetcher() -> None:
                while (feed := await queue.get()) is not None:
                    with timed(FEED_FETCH_DURATION):
                        outcome = await self.fetch_feed(client, feed, ctx.now)
                    FEED_FETCHES.labels(outcome.outcome).inc()
                    tally.add(outcome)
                    # Written in batches while the other feeds are still being fetched (OutcomeWriter).
                    await writer.add(outcome)

            async def feeder() -> None:
                async for page in self.pages(everything=everything, now=ctx.now, shard=shard):
                    tally.feeds += len(page)
                    for feed in page:
                        await queue.put(feed)
                for _ in range(self.concurrency):
                    await queue.put(None)

            steps = [asyncio.create_task(feeder())] + [asyncio.create_task(fetcher()) for _ in range(self.concurrency)]
            try:
                await asyncio.gather(*steps)
                created = await writer.finish()
            finally:
                for step in steps:  # a run cancelled (timeout, shutdown) stops its fetches too
                    step.cancel()
                await writer.abandon()
        if tally.feeds == 0 and ctx.trigger == Trigger.SCHEDULE:  # a pass someone asked for still succeeds
            raise NothingToDo("no active feed" if everything else "no feed is due")
        result = tally.summary(created)
        ctx.log.info(
            "hourly-rss-fetch: %d feeds, %d fetched, %d not modified, %d failed, %d disabled, %d jobs created",
            result["feeds"],
            result["fetched"],
            result["not_modified"],
            result["failed"],
            result["disabled"],
            created,
        )
        return unless_all_failed(
            result, attempted=tally.feeds, failed=result["failed"], unit="feeds", first_error=tally.first_error
        )

    async def pages(
        self, *, everything: bool, now: datetime, shard: FeedShard | None = None
    ) -> AsyncIterator[list[FeedRecord]]:
        """The feeds of one pass, page by page: the due ones (or every active one), each exactly once."""
        if everything:
            after_id = 0
            while page := await self.feeds.active_page(after_id=after_id, limit=self.page_size, shard=shard):
                yield page
                after_id = page[-1].id
            return
        after: DueCursor | None = None
        while page := await self.feeds.due_page(now=now, after=after, limit=self.page_size, shard=shard):
            yield page
            after = DueCursor.of(page[-1])

    async def fetch_feed(self, client: SafeClient, feed: FeedRecord, now: datetime) -> FeedOutcome:
        """Fetch and parse one feed; every failure becomes a recorded outcome, never an exception."""
        headers: dict[str, str] = {
            "Accept": "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, "
            "*/*;q=0.5"
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
            update = self._success(feed, now, response, new_url, status="not_modified")
            update = replace(update, entries_per_week=_quiet_rate(feed, now))
            return FeedOutcome(feed, update, "not_modified", poll=self._unchanged_poll(feed, response, now))
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
                retry_after_s=int(wait) if wait else None,
            )
        update = self._success(feed, now, response, new_url, status="ok")
        kind = response.content_type
        outcome = await self.read_body(
            feed,
            now,
            response.body,
            url=response.url,
            content_type=kind,
            update=update,
            response=response,
            client=client,
        )
        if outcome.outcome == "fetched":  # WebSub: see tasks/websub.py
            outcome.hub = discover_hub(response.body, response.headers.get("link"), response.url)
        return outcome

    async def read_body(
        self,
        feed: FeedRecord,
        now: datetime,
        body: bytes,
        *,
        url: str,
        content_type: str,
        update: FeedUpdate,
        response: FetchResult | None = None,
        client: SafeClient | None = None,
    ) -> FeedOutcome:
        """A feed body as an outcome: unchanged (same SHA-256 as last time: not parsed), parsed, or a failure."""
        digest = hashlib.sha256(body).hexdigest()
        update = replace(update, body_hash=digest)
        if feed.body_hash == digest:
            unchanged = replace(update, last_status="unchanged", entries_per_week=_quiet_rate(feed, now))
            return FeedOutcome(feed, unchanged, "unchanged", poll=self._unchanged_poll(feed, response, now))
        try:
            parsed = await _parse(body, url=url, content_type=content_type, client=client)
        except FeedParseError as exc:
            return self._failure(feed, now, status=exc.kind.value, error=str(exc), url=update.url)
        found = entry_links(parsed)
        links, published = found.links, found.published
        dated = list(published.values())
        week = entries_per_week(dated, now) if dated else None
        floor, why = self._server_floor(response, parsed.ttl, now)
        poll = PollResult(
            previous_interval_s=_previous_interval(feed),
            entries_last_week=week,
            dated_entries=len(dated),
            links=len(links),
            server_floor_s=floor,
            server_floor_why=why,
            previous_window=feed.window_entries,
        )
        update = replace(
            update,
            title=feed.title or parsed.title,
            site_url=parsed.site_url or feed.site_url,
            last_error=parsed.warning,
            entries_per_week=week,
            window_entries=len(links),
        )
        return FeedOutcome(feed, update, "fetched", links=links, published=published, poll=poll)

    async def ingest_body(
        self, feed: FeedRecord, body: bytes, *, now: datetime, content_type: str = "", status: str = "pushed"
    ) -> FeedOutcome:
        """Ingest a feed body obtained elsewhere (e.g. pushed by a WebSub hub) for `feed`, now: crawl jobs for
        its new links, the feed's hash and schedule updated. The returned outcome carries what was written."""
        update = replace(self._base(feed, now, url=feed.url, status=status, error=None), consecutive_failures=0)
        outcome = await self.read_body(feed, now, body, url=feed.url, content_type=content_type, update=update)
        await self.write([outcome], now)
        return outcome

    async def fetch_one(self, feed: FeedRecord, now: datetime) -> FeedOutcome:
        """Fetch one feed now (`mediabeat feeds fetch ID`) and write its outcome and jobs at once."""
        async with self.client_factory() as client:
            outcome = await self.fetch_feed(client, feed, now)
        await self.write([outcome], now)
        return outcome

    async def write(self, outcomes: list[FeedOutcome], now: datetime) -> int:
        writer = OutcomeWriter(self, now, schedule_from=now)
        for outcome in outcomes:
            await writer.add(outcome)
        try:
            return await writer.finish()
        finally:
            await writer.abandon()

    def _unchanged_poll(self, feed: FeedRecord, response: FetchResult | None, now: datetime) -> PollResult:
        """A 304 or the same body: nothing parsed; the stored rate, aged by the quiet time since the last fetch
        when it came from a window younger than a week (rate_after_silence), and the stored window."""
        floor, why = self._server_floor(response, None, now)
        return PollResult(
            previous_interval_s=_previous_interval(feed),
            entries_last_week=_quiet_rate(feed, now),
            dated_entries=1 if feed.entries_per_week is not None else 0,
            unchanged=True,
            server_floor_s=floor,
            server_floor_why=why,
            previous_window=feed.window_entries,
        )

    @staticmethod
    def _server_floor(response: FetchResult | None, ttl: str | None, now: datetime) -> tuple[int | None, str | None]:
        headers = response.headers if response is not None else {}
        return server_floor(
            ttl=ttl, cache_control=headers.get("cache-control"), expires=headers.get("expires"), now=now
        )

    def schedule(
        self, outcome: FeedOutcome, new_links: int, schedule_from: datetime, *, pushed: bool = False
    ) -> FeedUpdate:
        """The outcome's update with its next fetch time, interval and reason filled in."""
        update = outcome.update
        if not update.active:
            return replace(update, next_fetch_at=None, interval_reason=update.disabled_reason)
        if outcome.interval is not None:
            interval = outcome.interval
        else:
            previous = _previous_interval(outcome.feed)
            poll = outcome.poll or PollResult(previous_interval_s=previous, entries_last_week=None)
            if outcome.outcome == "fetched":
                poll = replace(poll, new_links=new_links)
            interval = after_success(poll, self.freshness)
            if pushed:
                interval = while_pushed(interval, self.freshness)
            update = replace(update, last_new_entries=new_links if outcome.outcome == "fetched" else 0)
        dormant_since = (outcome.feed.dormant_since or update.last_fetched_at) if interval.dormant else None
        return replace(
            update,
            next_fetch_at=schedule_from + timedelta(seconds=interval.seconds),
            fetch_interval_s=interval.seconds,
            interval_reason=interval.reason,
            dormant_since=dormant_since,
        )

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
            fetch_interval_s=feed.fetch_interval_s,
            interval_reason=feed.interval_reason,
            body_hash=feed.body_hash,
            entries_per_week=feed.entries_per_week,
            last_new_entries=feed.last_new_entries,
            dormant_since=feed.dormant_since,
            window_entries=feed.window_entries,
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
        retry_after_s: int | None = None,
    ) -> FeedOutcome:
        """A failed fetch: backed off, and dormant after feed_max_failures in a row (never disabled)."""
        failures = feed.consecutive_failures + 1
        update = self._base(feed, now, url=url or feed.url, status=status, error=error)
        update = replace(update, consecutive_failures=failures)
        interval = after_failure(
            failures,
            self.freshness,
            retry_after_s=retry_after_s,
            entries_last_week=feed.entries_per_week,
            window=feed.window_entries,
        )
        kind = "dormant" if interval.dormant else "failed"
        return FeedOutcome(feed, update, kind, error_kind=status, interval=interval)


def _quiet_rate(feed: FeedRecord, now: datetime) -> int | None:
    """The stored rate after the quiet time since the last fetch (a 304 or an unchanged body showed nothing new)."""
    if feed.last_fetched_at is None or feed.consecutive_failures:
        return feed.entries_per_week
    quiet = (now - feed.last_fetched_at).total_seconds()
    return rate_after_silence(feed.entries_per_week, feed.window_entries, quiet)


def _previous_interval(feed: FeedRecord) -> int | None:
    """The interval to adapt from: none after failures (a backoff or dormant interval says nothing of the feed)."""
    return feed.fetch_interval_s if feed.consecutive_failures == 0 else None


async def _parse(body: bytes, *, url: str, content_type: str, client: SafeClient | None) -> ParsedFeed:
    async def fetch_child(url: str) -> bytes:  # a sitemap index's children (news sitemaps: feed_entries.py)
        assert client is not None
        child = await client.get(url)
        if child.status != 200:
            raise FetchError(FetchErrorKind.NETWORK, f"HTTP {child.status} from {child.url}")
        return child.body

    fetch = fetch_child if client is not None else None
    return await parse_feed_body(body, url=url, content_type=content_type, fetch=fetch)
