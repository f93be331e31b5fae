"""crawl-queue: claim queued crawl jobs as a lease, fetch each page (robots.txt first), extract, store."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from mediabeat.clock import Clock
from mediabeat.crawler.articles import ExtractionError, ExtractionPool
from mediabeat.crawler.http import FetchError, SafeClient
from mediabeat.crawler.robots import RobotsCache
from mediabeat.db.stores.articles import ArticleStore, NewArticle
from mediabeat.db.stores.jobs import JobRecord, JobStore
from mediabeat.tasks.base import RunContext, SkipRun

RETRY_BASE = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=6)
# Fetch errors that another attempt will not fix: fail the job at once.
PERMANENT_FETCH_ERRORS = frozenset({"blocked", "bad_url", "too_large", "bad_encoding"})
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 414, 451})
HTML_TYPES = ("text/html", "application/xhtml+xml", "")


def retry_backoff(attempts: int) -> timedelta:
    """1, 2, 4, ... minutes (with jitter) after attempt `attempts`, at most six hours."""
    delay = min(RETRY_BASE * (1 << min(max(attempts - 1, 0), 20)), RETRY_MAX)
    return delay * random.uniform(1.0, 1.2)


class _Permanent(Exception):
    pass


class _Transient(Exception):
    pass


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
    ) -> None:
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

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        released = await self.jobs.release_expired(now=ctx.now)
        worker = f"{self.node_id}/run-{ctx.run_id}"
        claimed = await self.jobs.claim(worker=worker, now=ctx.now, limit=self.batch, lease=self.lease)
        if not claimed:
            raise SkipRun("queue empty")
        await self.pool.start()
        pending = {job.id for job in claimed}
        keeper = asyncio.create_task(self._keep_leases(pending, worker))
        outcomes: list[str] = []
        errors: Counter[str] = Counter()
        try:
            async with self.client_factory() as client:
                robots = RobotsCache(client, user_agent=self.user_agent)
                semaphore = asyncio.Semaphore(self.concurrency)

                async def one(job: JobRecord) -> str:
                    async with semaphore:
                        try:
                            return await self._process(job, worker, client, robots, errors)
                        finally:
                            pending.discard(job.id)

                outcomes = list(await asyncio.gather(*(one(job) for job in claimed)))
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        counts = Counter(outcomes)
        result = {
            "claimed": len(claimed),
            "succeeded": counts["succeeded"],
            "retried": counts["retried"],
            "failed": counts["failed"],
            "lost": counts["lost"],
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
        return result

    async def aclose(self) -> None:
        """Stop the extraction workers (when the process shuts down)."""
        await asyncio.to_thread(self.pool.shutdown)

    async def _keep_leases(self, pending: set[int], worker: str) -> None:
        interval = max(self.lease.total_seconds() / 3, 1.0)
        while True:
            await asyncio.sleep(interval)
            if pending:
                await self.jobs.extend_leases(sorted(pending), worker=worker, until=self.clock.now() + self.lease)

    async def _process(
        self, job: JobRecord, worker: str, client: SafeClient, robots: RobotsCache, errors: Counter[str]
    ) -> str:
        try:
            article_id = await self._crawl(job, client, robots)
        except _Permanent as exc:
            errors[str(exc).split(":", 1)[0]] += 1
            now = self.clock.now()
            ok = await self.jobs.fail(job.id, worker=worker, now=now, error=str(exc))
            return "failed" if ok else "lost"
        except (_Transient, ExtractionError) as exc:
            errors[str(exc).split(":", 1)[0]] += 1
            return await self.jobs.retry_or_fail(
                job, worker=worker, now=self.clock.now(), error=str(exc), backoff=retry_backoff(job.attempts)
            )
        done = await self.jobs.complete(job.id, worker=worker, now=self.clock.now(), article_id=article_id)
        return "succeeded" if done else "lost"

    async def _crawl(self, job: JobRecord, client: SafeClient, robots: RobotsCache) -> int:
        verdict = await robots.check(job.url)
        if not verdict.allowed:
            if verdict.retry:
                raise _Transient(f"robots: {verdict.reason}")
            raise _Permanent(f"robots: {verdict.reason}")
        try:
            response = await client.get(
                job.url, headers={"Accept": "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"}
            )
        except FetchError as exc:
            if exc.kind in PERMANENT_FETCH_ERRORS:
                raise _Permanent(f"{exc.kind}: {exc}") from None
            raise _Transient(f"{exc.kind}: {exc}") from None
        if response.status in PERMANENT_STATUSES:
            raise _Permanent(f"http_{response.status}: HTTP {response.status} from {response.url}")
        if response.status != 200:
            raise _Transient(f"http_{response.status}: HTTP {response.status} from {response.url}")
        if not response.content_type.startswith(HTML_TYPES) and "html" not in response.content_type:
            raise _Permanent(f"not_html: the page is {response.content_type}, not HTML")
        try:
            extracted = await self.pool.extract(response.body, response.url)
        except ExtractionError as exc:
            if "worker died" in str(exc):
                raise _Transient(f"extraction: {exc}") from None
            raise _Permanent(f"extraction: {exc}") from None
        return await self.articles.save(
            NewArticle(
                org_id=job.org_id,
                feed_id=job.feed_id,
                url=job.url,
                url_hash=job.url_hash,
                canonical_url=job.url,
                title=extracted.title,
                author=extracted.author,
                published_at=extracted.published_at,
                summary=extracted.summary,
                text=extracted.text,
                language=extracted.language,
            ),
            now=self.clock.now(),
        )
