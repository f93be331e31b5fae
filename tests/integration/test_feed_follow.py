"""A scheduled hourly-rss-fetch run follows the feeds through its minute: each feed is fetched when it comes due,
not at the next occurrence. Loopback feeds, both databases; a fake clock, and once the real one through the wiring."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mediabeat.clock import FakeClock, SystemClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.tables import feeds as feeds_t
from mediabeat.domain.scheduler import Trigger
from mediabeat.tasks.base import NothingToDo, RunContext
from mediabeat.tasks.feed_follow import FeedFollower, combine, next_pass_wait
from tests.crawler_helpers import crawler_registry, handlers
from tests.loopback import LoopbackServer, Route

START = datetime(2026, 1, 3, 9, 0, 0, tzinfo=UTC)
RSS = {"Content-Type": "application/rss+xml"}


def rss(*links: str) -> bytes:
    items = "".join(f"<item><link>{link}</link><title>{link}</title></item>" for link in links)
    return f'<rss version="2.0"><channel><title>News</title>{items}</channel></rss>'.encode()


def scheduled(at: datetime, *, trigger: Trigger = Trigger.SCHEDULE) -> RunContext:
    return RunContext(
        run_id=1,
        task_name="hourly-rss-fetch",
        trigger=trigger,
        scheduled_for=at,
        now=at,
        params={},
        log=logging.getLogger("mediabeat.test"),
    )


async def set_due(db: Database, feed_id: int, at: datetime | None) -> None:
    async with db.write() as conn:
        await conn.execute(feeds_t.update().where(feeds_t.c.id == feed_id).values(next_fetch_at=at))


@pytest.fixture
async def feeds(db: Database, site: LoopbackServer) -> dict[str, int]:
    org = (await OrgStore(db).create("newsroom", now=START)).id
    site.routes["/now.xml"] = Route(body=rss("/n1", "/n2"), headers=RSS)
    site.routes["/soon.xml"] = Route(body=rss("/s1"), headers=RSS)
    store = FeedStore(db)
    return {name: (await store.add(org, site.url(f"/{name}.xml"), now=START))[0].id for name in ("now", "soon")}


def test_the_next_pass_waits_for_the_next_due_feed_within_the_window() -> None:
    end = START + timedelta(seconds=50)
    assert next_pass_wait(now=START, next_due=START + timedelta(seconds=20), window_end=end) == 20.0
    assert next_pass_wait(now=START, next_due=START - timedelta(seconds=5), window_end=end) == 1.0  # never a busy loop
    assert next_pass_wait(now=START, next_due=START + timedelta(seconds=51), window_end=end) is None
    assert next_pass_wait(now=START, next_due=None, window_end=end) is None
    assert next_pass_wait(now=end, next_due=end, window_end=end) is None


def test_a_runs_counts_are_summed_over_its_passes() -> None:
    first = {"orgs": 2, "feeds": 3, "fetched": 2, "errors": {"timeout": 1}, "note": "x"}
    second = {"orgs": 1, "feeds": 1, "fetched": 1, "errors": {"timeout": 1, "blocked": 1}}
    assert combine([first, second]) == {
        "orgs": 2,
        "feeds": 4,
        "fetched": 3,
        "errors": {"timeout": 2, "blocked": 1},
        "note": "x",
        "passes": 2,
    }


async def test_a_scheduled_run_fetches_a_feed_when_it_comes_due(db: Database, feeds: dict[str, int]) -> None:
    await set_due(db, feeds["soon"], START + timedelta(seconds=20))
    clock = FakeClock(START)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    fetch, crawl = handlers(db, clock)
    follower = FeedFollower(fetch, feeds=FeedStore(db), clock=clock, follow_seconds=50, sleep=sleep)
    try:
        result = await follower(scheduled(START))
    finally:
        await crawl.aclose()
    assert slept == [20.0]  # one wait, to the second feed's due time; then nothing is due before :50
    assert (result["passes"], result["feeds"], result["fetched"], result["jobs_created"]) == (2, 2, 2, 3)
    soon = await FeedStore(db).get(feeds["soon"])
    assert soon is not None and soon.last_fetched_at == START + timedelta(seconds=20)


async def test_manual_runs_and_a_zero_window_make_one_pass(db: Database, feeds: dict[str, int]) -> None:
    await set_due(db, feeds["soon"], START + timedelta(seconds=20))
    clock = FakeClock(START)

    async def sleep(seconds: float) -> None:
        raise AssertionError(f"a one-pass run waited {seconds} s")

    fetch, crawl = handlers(db, clock)
    try:
        manual = FeedFollower(fetch, feeds=FeedStore(db), clock=clock, follow_seconds=50, sleep=sleep)
        result = await manual(scheduled(START, trigger=Trigger.MANUAL))
        assert "passes" not in result and result["feeds"] == 1
        off = FeedFollower(fetch, feeds=FeedStore(db), clock=clock, follow_seconds=0, sleep=sleep)
        with pytest.raises(NothingToDo):  # "now" was fetched by the manual run: an empty run
            await off(scheduled(START))
    finally:
        await crawl.aclose()


async def test_the_wired_task_follows_on_the_real_clock(db: Database, feeds: dict[str, int]) -> None:
    clock = SystemClock()
    start = clock.now()
    await set_due(db, feeds["now"], start + timedelta(hours=1))
    await set_due(db, feeds["soon"], start + timedelta(seconds=1.5))
    registry = crawler_registry(db, clock, feed_follow_seconds=4)
    fetch = registry.get("hourly_rss_fetch")
    try:
        result: Any = await fetch(scheduled(start))
    finally:
        await registry.get("crawl_queue").aclose()  # type: ignore[attr-defined]
    soon = await FeedStore(db).get(feeds["soon"])
    assert soon is not None and soon.last_fetched_at is not None
    assert result["passes"] == 2 and result["fetched"] == 1
    # Fetched when it came due, well before the next minute's occurrence.
    assert start + timedelta(seconds=1.5) <= soon.last_fetched_at < start + timedelta(seconds=4)


async def test_a_node_winding_down_ends_the_wait_at_once(db: Database, feeds: dict[str, int]) -> None:
    clock = SystemClock()
    start = clock.now()
    await set_due(db, feeds["soon"], start + timedelta(seconds=30))
    fetch, crawl = handlers(db, clock)
    ctx = scheduled(start)
    first_pass = asyncio.Event()

    async def one_pass(pass_ctx: RunContext) -> Any:
        try:
            return await fetch(pass_ctx)
        finally:
            first_pass.set()

    follower = FeedFollower(one_pass, feeds=FeedStore(db), clock=clock, follow_seconds=50)
    try:
        run = asyncio.create_task(follower(ctx))
        await first_pass.wait()
        await asyncio.wait({run}, timeout=0.2)
        assert not run.done()  # it waits for "soon", due in 30 s
        ctx.winding_down.set()
        result = await asyncio.wait_for(run, timeout=5)
    finally:
        await crawl.aclose()
    assert result["feeds"] == 1 and "passes" not in result
    soon = await FeedStore(db).get(feeds["soon"])
    assert soon is not None and soon.last_fetched_at is None
