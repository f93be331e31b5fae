"""crawl-queue: claim queued crawl jobs as a lease, fetch each page (robots.txt first), extract, store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from mediabeat.clock import Clock
from mediabeat.crawler.articles import ExtractionError, ExtractionErrorKind, ExtractionPool
from mediabeat.crawler.http import MAX_COOL_DOWN_S, FetchError, FetchErrorKind, FetchResult, SafeClient
from mediabeat.crawler.http.client import BACKOFF_STATUSES
from mediabeat.crawler.http.retry_after import retry_after_seconds
from mediabeat.crawler.robots import RobotsCache
from mediabeat.crawler.urls import article_canonical_url
from mediabeat.db.stores.articles import ArticleStore, NewArticle
from mediabeat.db.stores.jobs import JobStore
from mediabeat.db.stores.raw_pages import RawPage, pack_page
from mediabeat.domain.content import JobRecord
from mediabeat.tasks.base import NothingToDo, RunContext, unless_all_failed
from mediabeat.tasks.stored_hooks import ArticlesStored, StoredHooks
from mediabeat.telemetry import CRAWL_PAGE_DURATION, CRAWL_PAGES, timed

log = logging.getLogger(__name__)

# A page to write: its job, its article and, when raw HTML is kept, the page compressed.
PageToStore = tuple[JobRecord, NewArticle, RawPage | None]

RETRY_BASE = timedelta(minutes=1)
# Stored pages are written in batches (articles, then jobs): every FLUSH_PAGES pages or FLUSH_SECONDS.
FLUSH_PAGES = 50
FLUSH_SECONDS = 0.2
RETRY_MAX = timedelta(hours=6)
# Fetch errors that another attempt will not fix: fail the job at once.
PERMANENT_FETCH_ERRORS = frozenset(
    {FetchErrorKind.BLOCKED, FetchErrorKind.BAD_URL, FetchErrorKind.TOO_LARGE, FetchErrorKind.BAD_ENCODING}
)
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 414, 451})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Without a Content-Type the page is taken for HTML unless it starts like one of these.
BINARY_SIGNATURES = {
    b"%PDF-": "application/pdf",
    b"\x89PNG": "image/png",
    b"GIF8": "image/gif",
    b"\xff\xd8\xff": "image/jpeg",
    b"PK\x03\x04": "application/zip",
}


def retry_backoff(attempts: int) -> timedelta:
    """1, 2, 4, ... minutes (with jitter) after attempt `attempts`, at most six hours."""
    delay = min(RETRY_BASE * (1 << min(max(attempts - 1, 0), 20)), RETRY_MAX)
    return delay * random.uniform(1.0, 1.2)


class WriteBehind:
    """Collects finished pages and writes them in batches: every `max_items` pages or `max_delay` seconds.

    `add` returns a future with the page's outcome once its batch is written. One batch is
    written at a time; pages finished meanwhile wait for the next. A failed write fails the
    futures of its batch (their jobs stay leased and return to the queue when the lease ends).
    """

    def __init__(
        self,
        write: Callable[[list[PageToStore]], Awaitable[list[str]]],
        *,
        max_items: int,
        max_delay: float,
    ) -> None:
        self._write = write
        self.max_items = max(1, max_items)
        self.max_delay = max_delay
        self._items: list[tuple[PageToStore, asyncio.Future[str]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, item: PageToStore) -> asyncio.Future[str]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        self._items.append((item, future))
        if len(self._items) >= self.max_items:
            self.flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_delay, self.flush)
        return future

    def flush(self) -> None:
        """Start writing what is buffered (in the background)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._items = self._items, []
        if batch:
            task = asyncio.create_task(self._flush(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: list[tuple[PageToStore, asyncio.Future[str]]]) -> None:
        async with self._lock:
            try:
                outcomes = await self._write([item for item, _ in batch])
            except BaseException as exc:
                for _, future in batch:
                    if future.done():
                        continue
                    if isinstance(exc, Exception):
                        future.set_exception(exc)
                        future.exception()  # retrieved: the waiter sees it, nobody logs "never retrieved"
                    else:
                        future.cancel()
                if not isinstance(exc, Exception):
                    raise
                return
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

    async def close(self) -> None:
        """Write what is left and wait for every write in progress (on an error path: give up on them)."""
        self.flush()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class CrawlErrorKind(StrEnum):
    """Why a page yielded no article, besides the fetch errors (FetchErrorKind)."""

    ROBOTS = "robots"
    HTTP_STATUS = "http_status"
    NOT_HTML = "not_html"
    EXTRACTION = "extraction"


class CrawlFailure(Exception):
    """A page that yielded no article: `label` is what the run counts, `permanent` says whether to retry."""

    def __init__(
        self,
        kind: CrawlErrorKind | FetchErrorKind,
        message: str,
        *,
        permanent: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after  # seconds the host asked us to stay away (429/503, a cool-down)

    @property
    def label(self) -> str:
        """The kind as counted in a run's errors and stored on the job: http_404 for an HTTP status."""
        if self.kind is CrawlErrorKind.HTTP_STATUS:
            return f"http_{self.status}"
        return self.kind.value

    def __str__(self) -> str:
        return f"{self.label}: {self.message}"


def refused_media_type(response: FetchResult) -> str | None:
    """The media type that makes `response` no HTML page, or None when it may be one.

    A missing Content-Type is taken for HTML unless the body starts like a known binary format.
    """
    media_type = response.content_type
    if not media_type:
        head = response.body[:8]
        return next((kind for magic, kind in BINARY_SIGNATURES.items() if head.startswith(magic)), None)
    if media_type in HTML_TYPES or "html" in media_type:
        return None
    return media_type


class CrawlQueue:
    """The crawl-queue handler."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        articles: ArticleStore,
        client_factory: Callable[[], SafeClient],
        pool: ExtractionPool,
        clock: Clock,
        node_id: str,
        user_agent: str,
        batch: int,
        concurrency: int,
        lease: timedelta,
        flush_pages: int = FLUSH_PAGES,
        flush_seconds: float = FLUSH_SECONDS,
        on_stored: Sequence[ArticlesStored] = (),
        raw_html_max_bytes: int | None = None,
    ) -> None:
        self.raw_html_max_bytes = raw_html_max_bytes  # None: raw HTML is not kept
        self.on_stored = tuple(on_stored)
        self.flush_pages = flush_pages
        self.flush_seconds = flush_seconds
        self.jobs = jobs
        self.articles = articles
        self.client_factory = client_factory
        self.pool = pool
        self.clock = clock
        self.node_id = node_id
        self.user_agent = user_agent
        self.batch = batch
        self.concurrency = concurrency
        self.lease = lease
        self.robots = RobotsCache(user_agent=user_agent)  # shared by every run: robots.txt once an hour per host

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        released = await self.jobs.release_expired(now=ctx.now)
        worker = f"{self.node_id}/run-{ctx.run_id}"
        claimed = await self.jobs.claim(worker=worker, now=ctx.now, limit=self.batch, lease=self.lease)
        if not claimed:
            raise NothingToDo("queue empty")
        await self.pool.start()
        pending = {job.id for job in claimed}
        keeper = asyncio.create_task(self._keep_leases(pending, worker))
        hooks = StoredHooks(self.on_stored)  # off the write path: a slow hook does not hold back the next write
        buffer = WriteBehind(
            lambda batch: self._store(batch, worker, hooks), max_items=self.flush_pages, max_delay=self.flush_seconds
        )
        outcomes: list[str] = []
        errors: Counter[str] = Counter()
        try:
            async with self.client_factory() as client:
                semaphore = asyncio.Semaphore(self.concurrency)

                async def one(job: JobRecord) -> str:
                    cancelled = False
                    try:
                        async with semaphore:
                            with timed(CRAWL_PAGE_DURATION):
                                outcome = await self._process(job, worker, client, errors, buffer)
                        # A stored page waits for the next flush outside the semaphore: the
                        # slot goes to the next page at once.
                        label = outcome if isinstance(outcome, str) else await outcome
                        CRAWL_PAGES.labels(label).inc()
                        return label
                    except asyncio.CancelledError:
                        cancelled = True  # the job stays pending: _give_back returns it to the queue
                        raise
                    finally:
                        if not cancelled:
                            pending.discard(job.id)

                outcomes = list(await asyncio.gather(*(one(job) for job in claimed)))
        except asyncio.CancelledError:  # the run was cancelled: store what is extracted, queue the rest again
            await buffer.close()
            await self._give_back(pending, worker)
            await hooks.close()  # what was stored is announced (bounded: the queue holds a batch or two)
            raise
        finally:
            await buffer.close()
            await hooks.close()
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        return self._summary(ctx, claimed, outcomes, errors, released)

    def _summary(
        self, ctx: RunContext, claimed: list[JobRecord], outcomes: list[str], errors: Counter[str], released: int
    ) -> Mapping[str, Any]:
        """The run's counts, logged; AllWorkFailed if every page failed."""
        counts = Counter(outcomes)
        result = {
            "claimed": len(claimed),
            "succeeded": counts["succeeded"],
            "retried": counts["retried"],
            "failed": counts["failed"],
            "lost": counts["lost"],
            "deferred": counts["deferred"],  # not tried: their host is cooling down (429/503 Retry-After)
            "released_expired": released,
            "errors": dict(sorted(errors.items())),
        }
        ctx.log.info(
            "crawl-queue: %d claimed, %d succeeded, %d retried, %d failed",
            len(claimed),
            counts["succeeded"],
            counts["retried"],
            counts["failed"],
        )
        failed = counts["failed"] + counts["retried"]  # a page to retry failed this time too
        first_error = next(iter(errors), None)
        attempted = len(claimed) - counts["deferred"]
        return unless_all_failed(result, attempted=attempted, failed=failed, unit="pages", first_error=first_error)

    async def aclose(self) -> None:
        """Stop the extraction workers (when the process shuts down)."""
        await asyncio.to_thread(self.pool.shutdown)

    async def _give_back(self, pending: set[int], worker: str) -> None:
        """The run was cancelled: its unfinished jobs go back to the queue now, for the next run, not at lease end."""
        try:
            released = await asyncio.shield(self.jobs.release(sorted(pending), worker=worker, now=self.clock.now()))
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            log.warning(
                "crawl-queue cancelled; its %d unfinished job(s) return when their lease ends: %s", len(pending), exc
            )
            return
        log.info("crawl-queue cancelled: %d unfinished job(s) back in the queue", released)

    async def _keep_leases(self, pending: set[int], worker: str) -> None:
        interval = max(self.lease.total_seconds() / 3, 1.0)
        while True:
            await asyncio.sleep(interval)
            if pending:
                await self.jobs.extend_leases(sorted(pending), worker=worker, until=self.clock.now() + self.lease)

    async def _store(self, batch: Sequence[PageToStore], worker: str, hooks: StoredHooks) -> list[str]:
        """Write a batch of extracted pages: their articles, then their jobs, one transaction each.

        Should the process die between the two, the jobs are still leased: they go back to the
        queue when the lease runs out, and storing their articles again is an idempotent upsert.
        """
        now = self.clock.now()
        article_ids = await self.articles.save_many(
            [article for _, article, _ in batch], now=now, raw_pages=[raw for _, _, raw in batch]
        )
        held = await self.jobs.complete_with_articles(
            [(job.id, article_id) for (job, _, _), article_id in zip(batch, article_ids, strict=True)],
            worker=worker,
            now=self.clock.now(),
        )
        stored = [(article_id, article) for (_, article, _), article_id in zip(batch, article_ids, strict=True)]
        # Queued for the hooks, which run in the background (this waits only while their queue is full).
        await hooks.announce([pair for pair, (job, _, _) in zip(stored, batch, strict=True) if job.id in held])
        return ["succeeded" if job.id in held else "lost" for job, _, _ in batch]

    async def _process(
        self,
        job: JobRecord,
        worker: str,
        client: SafeClient,
        errors: Counter[str],
        buffer: WriteBehind,
    ) -> str | asyncio.Future[str]:
        try:
            article, raw = await self._crawl(job, client)
        except CrawlFailure as exc:
            errors[exc.label] += 1
            now = self.clock.now()
            if exc.permanent:
                ok = await self.jobs.fail(job.id, worker=worker, now=now, error=str(exc))
                return "failed" if ok else "lost"
            if exc.kind is FetchErrorKind.COOLING_DOWN and exc.retry_after is not None:
                # Nothing was sent: the job waits out the host's cool-down, its attempt not counted.
                until = now + timedelta(seconds=exc.retry_after)
                deferred = await self.jobs.release([job.id], worker=worker, now=now, run_after=until, error=str(exc))
                return "deferred" if deferred else "lost"
            backoff = max(retry_backoff(job.attempts), timedelta(seconds=exc.retry_after or 0))
            return await self.jobs.retry_or_fail(job, worker=worker, now=now, error=str(exc), backoff=backoff)
        return buffer.add((job, article, raw))

    async def _crawl(self, job: JobRecord, client: SafeClient) -> tuple[NewArticle, RawPage | None]:
        """The page's article and, when raw HTML is kept, the page compressed (in a thread, during the extraction)."""
        response = await self._fetch_page(job.url, client)
        extraction = self.pool.extract(response.body, response.url, feed_published_at=job.feed_published_at)
        try:
            if self.raw_html_max_bytes is None:
                extracted, raw = await extraction, None
            else:
                extracted, raw = await asyncio.gather(extraction, asyncio.to_thread(self._pack, response, job))
        except ExtractionError as exc:
            retry = exc.kind is ExtractionErrorKind.WORKER_DIED
            raise CrawlFailure(CrawlErrorKind.EXTRACTION, str(exc), permanent=not retry) from None
        article = NewArticle(
            org_id=job.org_id,
            feed_id=job.feed_id,
            url=job.url,
            url_hash=job.url_hash,
            canonical_url=article_canonical_url(extracted.canonical_url, response.url),
            title=extracted.title,
            author=extracted.author,
            published_at=extracted.published_at,
            summary=extracted.summary,
            text=extracted.text,
            language=extracted.language,
        )
        return article, raw

    def _pack(self, response: FetchResult, job: JobRecord) -> RawPage | None:
        assert self.raw_html_max_bytes is not None
        return pack_page(
            response.body,
            url=response.url,
            content_type=response.headers.get("content-type"),
            feed_published_at=job.feed_published_at,
            max_bytes=self.raw_html_max_bytes,
        )

    async def _fetch_page(self, url: str, client: SafeClient) -> FetchResult:
        """The page at `url` as an HTML 200 response, robots.txt permitting; CrawlFailure otherwise."""
        if (left := client.cooling_down(url)) > 0:  # before robots.txt, which the cool-down would refuse too
            message = f"the host asked us to stay away: no request for another {left:.0f} s"
            raise CrawlFailure(FetchErrorKind.COOLING_DOWN, message, permanent=False, retry_after=left)
        try:
            verdict = await self.robots.check(url, client)
        except FetchError as exc:  # its host is cooling down (another process was told so): wait it out
            raise CrawlFailure(exc.kind, str(exc), permanent=False, retry_after=exc.retry_after) from None
        if not verdict.allowed:
            raise CrawlFailure(CrawlErrorKind.ROBOTS, verdict.reason or "disallowed", permanent=not verdict.retry)
        if verdict.crawl_delay:
            client.respect_crawl_delay(url, verdict.crawl_delay)
        try:
            response = await client.get(url, headers={"Accept": "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"})
        except FetchError as exc:
            permanent = exc.kind in PERMANENT_FETCH_ERRORS
            raise CrawlFailure(exc.kind, str(exc), permanent=permanent, retry_after=exc.retry_after) from None
        if response.status != 200:
            asked = retry_after_seconds(response.headers.get("retry-after"))
            raise CrawlFailure(
                CrawlErrorKind.HTTP_STATUS,
                f"HTTP {response.status} from {response.url}",
                permanent=response.status in PERMANENT_STATUSES,
                status=response.status,
                retry_after=min(asked, MAX_COOL_DOWN_S) if asked and response.status in BACKOFF_STATUSES else None,
            )
        media_type = refused_media_type(response)
        if media_type is not None:
            raise CrawlFailure(
                CrawlErrorKind.NOT_HTML, f"the page is {media_type}, not HTML: not extracted", permanent=True
            )
        return response
