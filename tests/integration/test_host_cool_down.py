"""A 429/503 whose Retry-After is longer than a fetch waits becomes a cool-down of the host, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mediabeat.clock import FakeClock
from mediabeat.crawler.urls import url_hash
from mediabeat.db.engine import Database
from mediabeat.db.stores.jobs import JobStore, NewJob
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.domain.content import JobRecord
from mediabeat.domain.scheduler import AllWorkFailed
from mediabeat.tasks.crawl_queue import CrawlQueue
from tests.crawler_helpers import ctx, handlers
from tests.loopback import LoopbackServer, Route

START = datetime(2026, 1, 3, 9, 0, 30, tzinfo=UTC)
PAGE = b"<html lang='en'><body><article><h1>T</h1>" + b"<p>Words of a real article here.</p>" * 30 + b"</article>"


@pytest.fixture
async def org_id(db: Database) -> AsyncIterator[int]:
    yield (await OrgStore(db).create("newsroom", now=START)).id


async def enqueue(db: Database, org: int, *urls: str) -> None:
    await JobStore(db).enqueue([NewJob(org, None, u, url_hash(u)) for u in urls], now=START)


async def run(crawl: CrawlQueue, clock: FakeClock, run_id: int) -> Mapping[str, Any]:
    """The run's counts, also when every page failed (the run is then recorded failed)."""
    try:
        return await crawl(ctx(clock.now(), run_id=run_id))
    except AllWorkFailed as failed:
        return failed.result


async def jobs_by_path(db: Database, site: LoopbackServer) -> dict[str, JobRecord]:
    return {job.url.removeprefix(site.url("")): job for job in await JobStore(db).list_jobs()}


async def test_a_long_retry_after_cools_the_host_down_and_its_jobs_wait_in_the_queue(
    db: Database, site: LoopbackServer, org_id: int
) -> None:
    site.routes["/robots.txt"] = Route(status=404)
    site.routes["/busy"] = Route(status=429, headers={"Retry-After": "600"})
    site.routes["/next"] = Route(body=PAGE, headers={"Content-Type": "text/html"})
    clock = FakeClock(START)
    # Shared politeness off: its cool-down runs on the database's clock, which the test cannot move.
    _fetch, crawl = handlers(db, clock, crawler_shared_politeness=False)
    try:
        await enqueue(db, org_id, site.url("/busy"))
        first = await run(crawl, clock, 1)
        assert (first["retried"], first["errors"]) == (1, {"http_429": 1})
        assert site.paths().count("/busy") == 1  # 600 s is beyond the 1 s a fetch waits: no inline retry

        await enqueue(db, org_id, site.url("/next"))
        clock.advance(599)
        second = await run(crawl, clock, 2)
        assert (second["deferred"], second["retried"], second["errors"]) == (1, 0, {"cooling_down": 1})
        assert "/next" not in site.paths()  # the host got no request during its cool-down
        jobs = await jobs_by_path(db, site)
        assert jobs["/busy"].status == "queued" and jobs["/busy"].run_after >= START + timedelta(seconds=600)
        assert jobs["/next"].status == "queued" and jobs["/next"].attempts == 0  # nothing sent: no attempt spent
        assert jobs["/next"].run_after >= clock.now() and "stay away" in (jobs["/next"].last_error or "")

        site.routes["/busy"] = Route(body=PAGE, headers={"Content-Type": "text/html"})
        clock.advance(2)  # the cool-down is over: both go, and both succeed
        third = await run(crawl, clock, 3)
        assert third["succeeded"] == 2
        assert site.paths().count("/busy") == 2 and site.paths().count("/next") == 1
    finally:
        await crawl.aclose()


async def test_a_cool_down_is_capped_at_an_hour(db: Database, site: LoopbackServer, org_id: int) -> None:
    site.routes["/robots.txt"] = Route(status=404)
    site.routes["/away"] = Route(status=503, headers={"Retry-After": "86400"})
    clock = FakeClock(START)
    _fetch, crawl = handlers(db, clock, crawler_shared_politeness=False)
    try:
        await enqueue(db, org_id, site.url("/away"))
        await run(crawl, clock, 1)
        job = (await jobs_by_path(db, site))["/away"]
        assert job.status == "queued" and job.run_after <= START + timedelta(hours=1, minutes=1)
        clock.advance(3601)
        site.routes["/away"] = Route(body=PAGE, headers={"Content-Type": "text/html"})
        assert (await run(crawl, clock, 2))["succeeded"] == 1
    finally:
        await crawl.aclose()


async def test_a_cool_down_holds_for_every_process_sharing_the_database(
    db: Database, site: LoopbackServer, org_id: int
) -> None:
    site.routes["/robots.txt"] = Route(status=404)
    site.routes["/busy"] = Route(status=429, headers={"Retry-After": "600"})
    site.routes["/next"] = Route(body=PAGE, headers={"Content-Type": "text/html"})
    clock = FakeClock(START)
    # Two crawlers with limiters of their own, as two processes have, sharing the database's politeness.
    _f1, one = handlers(db, clock, crawler_shared_politeness=True, node_id="one")
    _f2, two = handlers(db, clock, crawler_shared_politeness=True, node_id="two")
    try:
        await enqueue(db, org_id, site.url("/busy"))
        assert (await run(one, clock, 1))["errors"] == {"http_429": 1}
        await enqueue(db, org_id, site.url("/next"))
        second = await run(two, clock, 2)
        assert second["errors"] == {"cooling_down": 1}
        assert "/next" not in site.paths()
        job = (await jobs_by_path(db, site))["/next"]
        assert job.status == "queued" and job.attempts == 0 and job.run_after >= START + timedelta(seconds=500)
    finally:
        await one.aclose()
        await two.aclose()


async def test_the_client_refuses_a_cooling_host_at_once_until_the_cool_down_ends(site: LoopbackServer) -> None:
    from mediabeat.crawler.http import ClientConfig, FetchError, FetchErrorKind, HostLimiter, SafeClient

    now = {"s": 1000.0}
    config = ClientConfig(user_agent="MediaBeatTest/1", allow_loopback=True, total_timeout=3.0, max_retry_wait=1.0)
    limiter = HostLimiter(concurrency=4, delay=0.0, max_wait=1.0, clock=lambda: now["s"])
    site.routes["/away"] = Route(status=503, headers={"Retry-After": "86400"})
    site.routes["/page"] = Route(body=b"fine")
    async with SafeClient(config, limiter=limiter) as client:
        assert (await client.get(site.url("/away"))).status == 503  # the answer itself comes back
        with pytest.raises(FetchError) as refused:
            await client.get(site.url("/page"))
        assert refused.value.kind is FetchErrorKind.COOLING_DOWN
        assert refused.value.retry_after == 3600.0  # a day asked, an hour kept
        assert client.cooling_down(site.url("/page")) == 3600.0
        now["s"] += 3599
        with pytest.raises(FetchError):
            await client.get(site.url("/page"))
        assert site.paths() == ["/away"]  # nothing sent while it cooled down
        now["s"] += 2
        assert (await client.get(site.url("/page"))).status == 200
