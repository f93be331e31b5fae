"""hourly-rss-fetch and crawl-queue against the demo site and loopback servers, on both databases."""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from mediabeat import telemetry
from mediabeat.clock import FakeClock
from mediabeat.crawler.opml import parse_opml
from mediabeat.crawler.urls import canonicalize, url_hash
from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import JobStore, NewJob
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.tables import media_crawl_jobs
from mediabeat.demo.content import DemoSiteConfig
from mediabeat.demo.site import create_demo_app, running_demo_site
from mediabeat.domain.scheduler import AllWorkFailed, Trigger
from mediabeat.tasks.base import NothingToDo, RunContext, SkipRun
from mediabeat.tasks.rss_fetch import OutcomeWriter
from mediabeat.testing import RecordingHandler, build_test_scheduler
from tests.crawler_helpers import crawler_registry, ctx, handlers
from tests.loopback import LoopbackServer, Route

START = datetime(2026, 1, 3, 9, 0, 30, tzinfo=UTC)
SITE = DemoSiteConfig(feed_size=5, article_interval_s=600)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def demo(clock: FakeClock) -> Iterator[str]:
    app = create_demo_app(SITE, now=clock.now)
    with running_demo_site(app) as urls:
        yield urls[0]


@pytest.fixture
async def org_id(db: Database) -> AsyncIterator[int]:
    yield (await OrgStore(db).create("newsroom", now=START)).id


async def import_demo_feeds(db: Database, org: int, base: str, count: int) -> None:
    import httpx

    opml = httpx.get(f"{base}/feeds.opml", timeout=10).content
    feeds = parse_opml(opml)[:count]
    await FeedStore(db).add_many(org, [(canonicalize(f.url), f.title) for f in feeds], now=START)


def _sample(name: str, **labels: str) -> float:
    return telemetry.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_tasks_through_the_scheduler(db: Database, demo: str, clock: FakeClock, org_id: int) -> None:
    await import_demo_feeds(db, org_id, demo, 3)
    registry = crawler_registry(db, clock, crawl_batch=10)
    service, loop = build_test_scheduler(
        db,
        clock=clock,
        handlers={
            "hourly_rss_fetch": registry.get("hourly_rss_fetch"),
            "crawl_queue": registry.get("crawl_queue"),
            "monitor_deliveries": registry.get("monitor_deliveries"),
            "nightly_cleanup": RecordingHandler(),
            "websub_renew": RecordingHandler(),
        },
    )
    pages_before = _sample("mediabeat_crawl_pages_total", outcome="succeeded")
    fetched_before = _sample("mediabeat_feed_fetches_total", outcome="fetched")
    page_times_before = _sample("mediabeat_crawl_page_duration_seconds_count")
    try:
        # Never run: the seeded tasks are due at start-up; the loop claims and runs them.
        assert (await loop.step()).started == 5
        await service.wait_idle(within=60)
        runs = {r.task: r for r in await service.list_runs(_filter(), limit=10)}
        fetch = runs["hourly-rss-fetch"]
        assert fetch.status == "succeeded" and fetch.trigger == "schedule"
        assert fetch.result is not None
        assert (fetch.result["feeds"], fetch.result["fetched"], fetch.result["failed"]) == (3, 3, 0)
        assert fetch.result["jobs_created"] == 15
        # crawl-queue ran at the same moment: either it took a batch, or it found the queue empty and
        # was counted on its task instead of kept (a scheduled run with nothing to do).
        if "crawl-queue" in runs:
            assert runs["crawl-queue"].status == "succeeded"

        crawl = await service.run_now_and_wait("crawl-queue")
        assert crawl.status == "succeeded" and crawl.result is not None
        assert crawl.result["succeeded"] >= 5 and crawl.result["failed"] == 0
        while (await JobStore(db).counts_by_status()).get("queued"):
            again = await service.run_now_and_wait("crawl-queue")
            assert again.status == "succeeded"
        assert await JobStore(db).counts_by_status() == {"succeeded": 15}
        # This process's counters saw every feed and page (other tests may have added to them).
        assert _sample("mediabeat_crawl_pages_total", outcome="succeeded") - pages_before == 15
        assert _sample("mediabeat_feed_fetches_total", outcome="fetched") - fetched_before == 3
        assert _sample("mediabeat_crawl_page_duration_seconds_count") - page_times_before >= 15
        articles = await ArticleStore(db).list(org_id=org_id, limit=100)
        assert len(articles) == 15
        for article in articles:
            assert article.title and article.author and article.published_at and article.language
            assert len(article.text or "") > 200 and "cookie" not in (article.text or "").lower()
        empty = await service.run_now_and_wait("crawl-queue")
        assert empty.status == "skipped" and "queue empty" in (empty.error or "")

        # Unchanged feeds: 304s, no new jobs. (Each feed now rests its own interval: make them due.)
        await make_all_due(db)
        refetch = await service.run_now_and_wait("hourly-rss-fetch")
        assert refetch.result is not None
        assert (refetch.result["not_modified"], refetch.result["jobs_created"]) == (3, 0)
        # Time passes on the site: one new article per feed, and only those are queued.
        clock.advance(SITE.article_interval_s)
        await make_all_due(db)
        later = await service.run_now_and_wait("hourly-rss-fetch")
        assert later.result is not None and later.result["fetched"] == 3 and later.result["jobs_created"] == 3
        jobs = await JobStore(db).list_jobs(limit=1000)
        assert len(jobs) == 18 and len({j.url for j in jobs}) == 18
    finally:
        await registry.get("crawl_queue").aclose()  # type: ignore[attr-defined]


async def test_a_fetch_in_which_every_feed_failed_is_recorded_failed_with_its_counts(
    db: Database, site: LoopbackServer, clock: FakeClock, org_id: int
) -> None:
    site.routes["/one.xml"] = Route(status=500, body=b"oops")
    site.routes["/two.xml"] = Route(status=503, body=b"down")
    await FeedStore(db).add(org_id, site.url("/one.xml"), now=START)
    await FeedStore(db).add(org_id, site.url("/two.xml"), now=START)
    registry = crawler_registry(db, clock)
    service, _loop = build_test_scheduler(
        db, clock=clock, handlers={"hourly_rss_fetch": registry.get("hourly_rss_fetch")}
    )
    try:
        run = await service.run_now_and_wait("hourly-rss-fetch")
    finally:
        await registry.get("crawl_queue").aclose()  # type: ignore[attr-defined]
    assert run.status == "failed" and run.traceback is None
    assert (run.error or "").startswith("all 2 feeds failed (first: ")
    assert run.result is not None and (run.result["feeds"], run.result["failed"]) == (2, 2)
    task = await service.get_task_by_name("hourly-rss-fetch")
    assert task.last_status == "failed"


async def make_all_due(db: Database) -> None:
    from mediabeat.db.tables import feeds

    async with db.write() as conn:
        await conn.execute(feeds.update().values(next_fetch_at=None))


def _filter():  # type: ignore[no-untyped-def]
    from mediabeat.domain.scheduler import RunFilter

    return RunFilter()


async def test_feed_conditional_get_backoff_disable_and_enable(db: Database, site: LoopbackServer, org_id: int) -> None:
    calls = collections.Counter[str]()

    def conditional(headers: dict[str, str]) -> Route:
        calls["feed"] += 1
        if headers.get("if-none-match") == '"v1"':
            return Route(status=304, headers={"ETag": '"v1"'})
        items = "".join(f"<item><link>/story/{i}?utm_source=rss#c</link><title>S{i}</title></item>" for i in range(3))
        body = (
            f'<rss version="2.0"><channel><title>Good</title>{items}<item><link>/story/0</link></item></channel></rss>'
        )
        return Route(body=body.encode(), headers={"ETag": '"v1"', "Content-Type": "application/rss+xml"})

    site.routes["/good.xml"] = Route(dynamic=conditional)
    site.routes["/broken.xml"] = Route(status=500, body=b"oops")
    good, _ = await FeedStore(db).add(org_id, site.url("/good.xml"), now=START)
    broken, _ = await FeedStore(db).add(org_id, site.url("/broken.xml"), now=START)
    await FeedStore(db).change(good.id, priority=4)
    clock = FakeClock(START)
    fetch, crawl = handlers(db, clock, feed_max_failures=3, feed_policy="hourly")

    first = await fetch(ctx(START))
    assert (first["fetched"], first["failed"], first["jobs_created"]) == (1, 1, 3)
    queued = {j.url: j.priority for j in await JobStore(db).list_jobs()}
    assert queued == {site.url(f"/story/{i}"): 4 for i in range(3)}  # canonical: no tracking, no fragment
    after = {f.id: f for f in await FeedStore(db).list()}
    assert after[good.id].etag == '"v1"' and after[good.id].last_status == "ok" and after[good.id].title == "Good"
    assert after[broken.id].consecutive_failures == 1 and after[broken.id].last_status == "http_500"

    hour = timedelta(hours=1)
    second = await fetch(ctx(START + hour))
    assert (second["not_modified"], second["failed"], second["jobs_created"]) == (1, 1, 0)
    assert site.requests[-1][1].get("if-none-match") == '"v1"' or any(
        h.get("if-none-match") == '"v1"' for p, h in site.requests if p == "/good.xml"
    )
    backed_off = await FeedStore(db).get(broken.id)
    assert backed_off is not None and backed_off.consecutive_failures == 2
    assert backed_off.next_fetch_at is not None and backed_off.next_fetch_at > START + hour + timedelta(minutes=30)
    # Backing off: a run in between leaves the broken feed alone (and the good one rests its hour).
    with pytest.raises(NothingToDo, match="no feed is due"):  # a scheduled run: counted, not kept
        await fetch(ctx(START + hour + timedelta(minutes=30), trigger=Trigger.SCHEDULE))
    assert (await fetch(ctx(START + hour + timedelta(minutes=30))))["feeds"] == 0  # a manual pass succeeds
    fourth = await fetch(ctx(START + 2 * hour + timedelta(minutes=1)))
    assert fourth["dormant"] == 1 and fourth["disabled"] == 0
    # Too many failures: dormant (tried every 30 days), not disabled.
    dormant = await FeedStore(db).get(broken.id)
    assert dormant is not None and dormant.active and dormant.dormant_since is not None
    assert dormant.next_fetch_at == START + 2 * hour + timedelta(minutes=1) + timedelta(days=30)
    assert "dormant after 3 failures" in (dormant.interval_reason or "")
    enabled = await FeedStore(db).set_active(broken.id, True)
    assert enabled is not None and enabled.active and enabled.consecutive_failures == 0
    assert enabled.dormant_since is None and enabled.next_fetch_at is None
    await crawl.aclose()


async def test_a_feed_on_an_internal_name_records_the_refusal_without_the_address(
    db: Database, org_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    real_getaddrinfo = loop.getaddrinfo

    async def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host == "priv.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 80))]
        return await real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    feed, _ = await FeedStore(db).add(org_id, "http://priv.test/feed.xml", now=START)
    fetch, crawl = handlers(db, FakeClock(START))
    try:
        with pytest.raises(AllWorkFailed) as failed:  # its only feed failed: the run is recorded failed
            await fetch(ctx(START))
    finally:
        await crawl.aclose()
    result = failed.value.result
    assert result["errors"] == {"blocked": 1}
    stored = await FeedStore(db).get(feed.id)
    assert stored is not None and stored.last_status == "blocked"
    assert (stored.last_error or "").startswith(
        "priv.test resolves to an address the crawler never fetches (private network)"
    )
    assert "10.0.0.1" not in (stored.last_error or "")


async def test_outcomes_are_written_in_batches_while_fetching(
    db: Database, site: LoopbackServer, org_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many batches (two feeds or three links each): every feed updated, each new URL queued once."""
    monkeypatch.setattr(OutcomeWriter, "FEEDS_PER_BATCH", 2)
    monkeypatch.setattr(OutcomeWriter, "JOBS_PER_BATCH", 3)
    for n in range(9):
        # Feeds n and n+1 share a story, so the same URL arrives in different batches.
        items = "".join(f"<item><link>/story/{i}</link><title>S{i}</title></item>" for i in (n, n + 1))
        body = f'<rss version="2.0"><channel><title>Feed {n}</title>{items}</channel></rss>'.encode()
        site.routes[f"/feed/{n}.xml"] = Route(body=body, headers={"Content-Type": "application/rss+xml"})
        await FeedStore(db).add(org_id, site.url(f"/feed/{n}.xml"), now=START)
    site.routes["/broken.xml"] = Route(status=500, body=b"oops")
    await FeedStore(db).add(org_id, site.url("/broken.xml"), now=START)
    fetch, crawl = handlers(db, FakeClock(START))
    result = await fetch(ctx(START))
    assert (result["feeds"], result["fetched"], result["failed"], result["entries"]) == (10, 9, 1, 18)
    assert result["jobs_created"] == 10
    assert sorted(j.url for j in await JobStore(db).list_jobs()) == sorted(site.url(f"/story/{i}") for i in range(10))
    feeds = await FeedStore(db).list()
    assert sorted(f.last_status or "" for f in feeds) == ["http_500"] + ["ok"] * 9
    assert {f.title for f in feeds if f.last_status == "ok"} == {f"Feed {n}" for n in range(9)}
    await crawl.aclose()


async def test_a_failed_batch_write_fails_the_run_after_the_other_writes_end(
    db: Database, site: LoopbackServer, org_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(OutcomeWriter, "FEEDS_PER_BATCH", 1)
    for n in range(3):
        body = f'<rss version="2.0"><channel><title>F{n}</title><item><link>/s/{n}</link></item></channel></rss>'
        site.routes[f"/f/{n}.xml"] = Route(body=body.encode(), headers={"Content-Type": "application/rss+xml"})
        await FeedStore(db).add(org_id, site.url(f"/f/{n}.xml"), now=START)
    real_apply = FeedStore.apply_updates
    calls = 0
    in_flight = 0

    async def flaky_apply(self, updates, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls, in_flight
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")
        in_flight += 1
        try:
            await asyncio.sleep(0.2)
            return await real_apply(self, updates, **kwargs)
        finally:
            in_flight -= 1

    monkeypatch.setattr(FeedStore, "apply_updates", flaky_apply)
    fetch, crawl = handlers(db, FakeClock(START))
    with pytest.raises(RuntimeError, match="database went away"):
        await fetch(ctx(START))
    assert calls == 3 and in_flight == 0  # the batches after the failed one ended before the run did
    await crawl.aclose()


async def test_hostile_feeds_are_recorded_failures(db: Database, clock: FakeClock, org_id: int) -> None:
    import httpx
    import psutil

    from mediabeat.demo.hostile import HostileConfig

    hostile = HostileConfig(slow_byte_interval_s=0.3, slow_total_s=30, slow_headers_delay_s=20)
    app = create_demo_app(SITE, hostile=hostile, now=clock.now)
    rss_before = psutil.Process().memory_info().rss
    # The rate-limited feed on an address of its own: its long Retry-After cools its whole host down.
    with running_demo_site(app, ["127.0.0.1", "127.0.0.2"]) as (base, apart):
        listed = parse_opml(httpx.get(f"{base}/hostile.opml", timeout=10).content)
        added = [(f.url.replace(base, apart) if "/rate-limited/" in f.url else f.url, f.title) for f in listed]
        await FeedStore(db).add_many(org_id, added, now=START)
        fetch, crawl = handlers(db, clock)
        result = await fetch(ctx(START))
        feeds = {f.url.split("/hostile/")[1].split("/")[0]: f for f in await FeedStore(db).list()}
    rss_after = psutil.Process().memory_info().rss
    await crawl.aclose()
    assert result["feeds"] == len(listed)
    status = {mode: f.last_status for mode, f in feeds.items()}
    assert status["slow"] == "timeout" and status["slow-headers"] == "timeout"
    assert status["error-500"] == "http_500" and status["rate-limited"] == "http_429"
    assert status["redirect-loop"] in {"redirect_loop", "too_many_redirects"}
    assert status["huge"] == "too_large" and status["gzip-bomb"] == "too_large"
    assert status["html"] == "html" and status["empty"] == "empty"
    # Broken XML that feedparser can still read keeps its entries, with the problem recorded.
    assert status["malformed"] == "ok" and "not well-formed" in (feeds["malformed"].last_error or "")
    for fine in ("bom", "relative-links", "wrong-charset", "wrong-charset-reverse", "found", "moved", "moved-308"):
        assert status[fine] == "ok", (fine, feeds[fine].last_error)
    assert feeds["moved"].url.endswith("/hostile/moved/new-feed.xml")
    assert feeds["moved-308"].url.endswith("/hostile/moved-308/new-feed.xml")
    assert feeds["found"].url.endswith("/hostile/found/feed.xml")
    assert not feeds["gone"].active and "410" in (feeds["gone"].disabled_reason or "")
    assert status["gone"] == "gone"
    limited = feeds["rate-limited"]
    assert limited.next_fetch_at is not None and limited.next_fetch_at >= START + timedelta(seconds=120)
    for mode in ("error-500", "html", "empty", "huge", "gzip-bomb", "slow"):
        assert feeds[mode].consecutive_failures == 1 and feeds[mode].last_error, mode
    # Links (relative ones too) came out absolute, on the site.
    jobs = await JobStore(db).list_jobs(limit=1000)
    assert jobs and all(j.url.startswith(f"{base}/") for j in jobs)
    assert rss_after - rss_before < 150 * 1024 * 1024  # the 50 MB body and the bomb never sat in memory


async def test_crawl_queue_retries_fails_and_obeys_robots(db: Database, clock: FakeClock, org_id: int) -> None:
    from mediabeat.demo.hostile import HostileConfig

    hostile = HostileConfig(slow_byte_interval_s=0.3, slow_total_s=30, robots_error_hosts=frozenset({"127.0.0.2"}))
    app = create_demo_app(SITE, hostile=hostile, now=clock.now)
    with running_demo_site(app, ["127.0.0.1", "127.0.0.2"]) as (base, second):
        article = f"{base}/world/"
        import httpx

        section = httpx.get(article, timeout=10).text
        page = next(
            base + part.split('"', 1)[0]
            for part in section.split('href="')[1:]
            if part.startswith("/world/") and part.split('"', 1)[0].endswith(".html")
        )
        urls = {
            "ok": page,
            "robots": f"{base}/private/secret.html",
            "robots5xx": page.replace(base, second),
            "error-500": f"{base}/hostile/error-500/page.html",
            "gone": f"{base}/hostile/gone/page.html",
            "huge": f"{base}/hostile/huge/page.html",
            "empty": f"{base}/hostile/empty/page.html",
            "slow": f"{base}/hostile/slow/page.html",
        }
        store = JobStore(db)
        await store.enqueue(
            [NewJob(org_id, None, canonicalize(u), url_hash(canonicalize(u))) for u in urls.values()],
            now=START,
            max_attempts=2,
        )
        _fetch, crawl = handlers(db, clock)
        try:
            first = await crawl(ctx(START))
            assert first["claimed"] == len(urls) and first["succeeded"] == 1
            jobs = {j.url: j for j in await store.list_jobs()}
            by_name = {name: jobs[canonicalize(u)] for name, u in urls.items()}
            assert by_name["ok"].status == "succeeded" and by_name["ok"].article_id is not None
            for name in ("robots", "gone", "huge", "empty"):
                assert by_name[name].status == "failed", name
                assert by_name[name].finished_at is not None
            assert "robots.txt" in (by_name["robots"].last_error or "")
            for name in ("robots5xx", "error-500", "slow"):
                assert by_name[name].status == "queued" and by_name[name].attempts == 1, name
                assert by_name[name].run_after > START
            assert "503" in (by_name["robots5xx"].last_error or "")
            assert first["retried"] == 3 and first["failed"] == 4

            with pytest.raises(SkipRun, match="queue empty"):
                await crawl(ctx(START + timedelta(seconds=5)))  # retries are not due yet
            with pytest.raises(AllWorkFailed, match=r"^all 3 pages failed \(first: ") as every_page:
                await crawl(ctx(START + timedelta(hours=1)))
            second_run = every_page.value.result  # the counts still go on the run
            assert (second_run["claimed"], second_run["failed"]) == (3, 3)  # max_attempts=2: failed for good
            counts = await store.counts_by_status()
            assert counts == {"succeeded": 1, "failed": 7}
        finally:
            await crawl.aclose()


async def test_expired_leases_go_back_to_the_queue(db: Database, site: LoopbackServer, org_id: int) -> None:
    body = b"<html lang='en'><body><article><h1>T</h1>" + b"<p>Words of a real article here.</p>" * 30 + b"</article>"
    site.routes["/robots.txt"] = Route(status=404)
    site.routes["/p"] = Route(body=body, headers={"Content-Type": "text/html"})
    store = JobStore(db)
    url = site.url("/p")
    await store.enqueue([NewJob(org_id, None, url, url_hash(url))], now=START)
    dead = await store.claim(worker="dead-node", now=START, limit=10, lease=timedelta(minutes=15))
    assert len(dead) == 1
    _fetch, crawl = handlers(db, FakeClock(START), crawl_lease_seconds=900)
    try:
        with pytest.raises(SkipRun):
            await crawl(ctx(START + timedelta(minutes=5)))  # still leased to the dead worker
        done = await crawl(ctx(START + timedelta(minutes=16)))
        assert done["released_expired"] == 1 and done["succeeded"] == 1
        [job] = await store.list_jobs()
        assert job.status == "succeeded" and job.attempts == 2
        async with db.read() as conn:
            n = (await conn.execute(sa.select(sa.func.count()).select_from(media_crawl_jobs))).scalar_one()
        assert n == 1
    finally:
        await crawl.aclose()


async def test_a_page_that_is_not_html_is_refused_with_its_reason(
    db: Database, site: LoopbackServer, org_id: int
) -> None:
    pdf = b"%PDF-1.7\n" + b"<html><body><article><p>Words of a real article here.</p></article></body></html>" * 30
    site.routes["/robots.txt"] = Route(status=404)
    site.routes["/report.pdf"] = Route(body=pdf, headers={"Content-Type": "application/pdf"})
    site.routes["/photo"] = Route(body=pdf, headers={"Content-Type": "image/jpeg"})
    site.routes["/untyped"] = Route(body=pdf)  # no Content-Type: sniffed, and a PDF all the same
    urls = [site.url(path) for path in ("/report.pdf", "/photo", "/untyped")]
    store = JobStore(db)
    await store.enqueue([NewJob(org_id, None, u, url_hash(u)) for u in urls], now=START)
    _fetch, crawl = handlers(db, FakeClock(START))
    try:
        with pytest.raises(AllWorkFailed) as failed:  # every page failed: the run is recorded failed
            await crawl(ctx(START))
    finally:
        await crawl.aclose()
    result = failed.value.result
    assert result["failed"] == 3 and result["errors"] == {"not_html": 3}
    errors = {job.url: job.last_error for job in await store.list_jobs()}
    assert errors == {
        urls[0]: "not_html: the page is application/pdf, not HTML: not extracted",
        urls[1]: "not_html: the page is image/jpeg, not HTML: not extracted",
        urls[2]: "not_html: the page is application/pdf, not HTML: not extracted",
    }
    assert await ArticleStore(db).list(org_id=org_id, limit=10) == []


async def test_an_article_is_stored_under_its_canonical_url(db: Database, site: LoopbackServer, org_id: int) -> None:
    def page(canonical: str) -> Route:
        head = f'<head><link rel="canonical" href="{canonical}"><title>T</title></head>'.encode()
        article = b"<article><h1>A headline</h1>" + b"<p>Words of a real article here, long enough.</p>" * 30
        return Route(body=b"<html lang='en'>" + head + b"<body>" + article + b"</article></body></html>")

    site.routes["/robots.txt"] = Route(status=404)
    site.routes["/s"] = Route(status=301, headers={"Location": "/2026/story.html?utm_source=feed"})
    site.routes["/2026/story.html"] = page(site.url("/2026/story"))
    site.routes["/copied.html"] = page("https://elsewhere.example/original")
    jobs = [site.url("/s?id=1"), site.url("/copied.html")]
    await JobStore(db).enqueue([NewJob(org_id, None, u, url_hash(u)) for u in jobs], now=START)
    _fetch, crawl = handlers(db, FakeClock(START))
    try:
        assert (await crawl(ctx(START)))["succeeded"] == 2
    finally:
        await crawl.aclose()
    stored = {a.url: a for a in await ArticleStore(db).list(org_id=org_id, limit=10)}
    # Redirected, then declared by the page: its own declaration on its own site wins.
    assert stored[jobs[0]].canonical_url == site.url("/2026/story")
    # A page claiming another site's URL is not believed: where it was fetched from stands.
    assert stored[jobs[1]].canonical_url == site.url("/copied.html")


async def test_robots_txt_is_read_once_for_all_runs_and_its_crawl_delay_spaces_them(
    db: Database, site: LoopbackServer, org_id: int
) -> None:
    body = b"<html lang='en'><body><article><h1>T</h1>" + b"<p>Words of a real article here.</p>" * 30 + b"</article>"
    page = Route(body=body, headers={"Content-Type": "text/html"})
    starts: list[float] = []

    def record(headers: dict[str, str]) -> Route:
        starts.append(time.monotonic())
        return page

    site.routes["/robots.txt"] = Route(
        body=b"User-agent: *\nCrawl-delay: 0.4\n", headers={"Content-Type": "text/plain"}
    )
    urls = [site.url(f"/p{i}") for i in range(4)]
    for i in range(4):
        site.routes[f"/p{i}"] = Route(dynamic=record)
    store = JobStore(db)
    _fetch, crawl = handlers(db, FakeClock(START))
    try:
        await store.enqueue([NewJob(org_id, None, u, url_hash(u)) for u in urls[:3]], now=START)
        assert (await crawl(ctx(START, run_id=1)))["succeeded"] == 3
        await store.enqueue([NewJob(org_id, None, urls[3], url_hash(urls[3]))], now=START)
        assert (await crawl(ctx(START, run_id=2)))["succeeded"] == 1
    finally:
        await crawl.aclose()
    assert [path for path, _ in site.requests].count("/robots.txt") == 1
    # Four pages, three gaps of at least 0.4 s, the last one across two runs (less a margin
    # for when the server thread got to each request).
    assert len(starts) == 4 and starts[-1] - starts[0] >= 3 * 0.4 - 0.3


async def test_a_feed_with_only_last_modified_is_asked_if_modified_since(
    db: Database, site: LoopbackServer, org_id: int
) -> None:
    stamp = "Wed, 21 Oct 2026 07:28:00 GMT"

    def by_date(headers: dict[str, str]) -> Route:
        if headers.get("if-modified-since") == stamp:
            return Route(status=304)
        body = b'<rss version="2.0"><channel><title>Dated</title><item><link>/a</link></item></channel></rss>'
        return Route(body=body, headers={"Last-Modified": stamp, "Content-Type": "application/rss+xml"})

    site.routes["/dated.xml"] = Route(dynamic=by_date)
    feed, _ = await FeedStore(db).add(org_id, site.url("/dated.xml"), now=START)
    fetch, crawl = handlers(db, FakeClock(START))
    try:
        assert (await fetch(ctx(START)))["jobs_created"] == 1
        stored = await FeedStore(db).get(feed.id)
        assert stored is not None and stored.last_modified == stamp and stored.etag is None
        again = await fetch(ctx(START + timedelta(hours=1)))
        assert (again["not_modified"], again["jobs_created"]) == (1, 0)
    finally:
        await crawl.aclose()
    asked = [h for path, h in site.requests if path == "/dated.xml"]
    assert "if-modified-since" not in asked[0] and asked[1]["if-modified-since"] == stamp
    assert "if-none-match" not in asked[1]


async def test_on_stored_hooks_see_each_stored_article_and_a_failing_hook_loses_nothing(
    db: Database, site: LoopbackServer, org_id: int
) -> None:
    article = b"<article><h1>A headline</h1>" + b"<p>Words of a real article here, long enough.</p>" * 30
    site.routes["/robots.txt"] = Route(status=404)
    site.routes["/a.html"] = Route(
        body=b"<html lang='en'><head><title>A</title></head><body>" + article + b"</body></html>"
    )
    url = site.url("/a.html")
    await JobStore(db).enqueue([NewJob(org_id, None, url, url_hash(url))], now=START)
    seen: list[tuple[int, str]] = []

    async def record(stored: object) -> None:
        seen.extend((article_id, a.url) for article_id, a in stored)  # type: ignore[attr-defined]

    async def broken(stored: object) -> None:
        raise RuntimeError("a hook that fails")

    _fetch, crawl = handlers(db, FakeClock(START))
    crawl.on_stored = (broken, record)
    try:
        assert (await crawl(ctx(START)))["succeeded"] == 1
    finally:
        await crawl.aclose()
    stored = await ArticleStore(db).list(org_id=org_id, limit=10)
    assert seen == [(stored[0].id, url)]


class _NotifyingArticleStore(ArticleStore):
    """The real store, which also says when each batch is written (so a test can wait for the second)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.batches: list[list[int]] = []
        self.second_written = asyncio.Event()

    async def save_many(self, articles, *, now, raw_pages=()):  # type: ignore[no-untyped-def]
        ids = await super().save_many(articles, now=now, raw_pages=raw_pages)
        self.batches.append(list(ids))
        if len(self.batches) == 2:
            self.second_written.set()
        return ids


async def _slow_hook_crawl(db: Database, site: LoopbackServer, org_id: int, pages: int) -> tuple[Any, ...]:
    """A crawl-queue of `pages` one-page batches whose first hook blocks until `release` is set."""
    body = b"<article><h1>A headline</h1>" + b"<p>Words of a real article here, long enough.</p>" * 30
    site.routes["/robots.txt"] = Route(status=404)
    urls = []
    for n in range(pages):
        site.routes[f"/p/{n}.html"] = Route(body=b"<html lang='en'><title>P</title><body>" + body + b"</body></html>")
        urls.append(site.url(f"/p/{n}.html"))
    await JobStore(db).enqueue([NewJob(org_id, None, u, url_hash(u)) for u in urls], now=START)
    _fetch, crawl = handlers(db, FakeClock(START))
    crawl.flush_pages = 1  # each page is a batch of its own
    crawl.articles = store = _NotifyingArticleStore(db)
    release, blocked = asyncio.Event(), asyncio.Event()
    announced: list[list[int]] = []
    after: list[list[int]] = []

    async def slow(stored: Any) -> None:
        announced.append([i for i, _ in stored])
        blocked.set()
        await release.wait()

    async def next_hook(stored: Any) -> None:
        after.append([i for i, _ in stored])

    crawl.on_stored = (slow, next_hook)
    return crawl, store, release, blocked, announced, after


async def test_a_slow_on_stored_hook_does_not_hold_back_the_next_batch_write(
    db: Database, site: LoopbackServer, org_id: int
) -> None:
    crawl, store, release, blocked, announced, after = await _slow_hook_crawl(db, site, org_id, pages=3)
    run = asyncio.create_task(crawl(ctx(START)))
    try:
        await asyncio.wait_for(blocked.wait(), timeout=20)
        # The first batch's hook is blocked, and the second batch is written all the same.
        await asyncio.wait_for(store.second_written.wait(), timeout=20)
        assert len(announced) == 1 and after == [] and not run.done()
        release.set()
        result = await asyncio.wait_for(run, timeout=30)
    finally:
        release.set()
        await crawl.aclose()
    assert result["succeeded"] == 3
    # Every batch's hooks ran, in order, before the run ended.
    written = list(store.batches)
    assert announced == written and after == written


async def test_a_cancelled_run_still_runs_the_hooks_of_what_it_stored(
    db: Database, site: LoopbackServer, org_id: int
) -> None:
    crawl, store, release, blocked, _announced, after = await _slow_hook_crawl(db, site, org_id, pages=2)
    run = asyncio.create_task(crawl(ctx(START)))
    try:
        await asyncio.wait_for(blocked.wait(), timeout=20)
        await asyncio.wait_for(store.second_written.wait(), timeout=20)
        run.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run, timeout=30)
    finally:
        release.set()
        await crawl.aclose()
    stored = sorted(a.id for a in await ArticleStore(db).list(org_id=org_id, limit=10))
    assert sorted(i for ids in after for i in ids) == stored and len(stored) == 2


async def test_a_pass_reads_the_due_feeds_in_pages_and_fetches_each_once(
    db: Database, site: LoopbackServer, org_id: int
) -> None:
    """Pages of two feeds, three fetchers: every due feed fetched exactly once; {"all": true} takes the rest."""
    for n in range(11):
        body = f'<rss version="2.0"><channel><title>F{n}</title><item><link>/s/{n}</link></item></channel></rss>'
        site.routes[f"/p/{n}.xml"] = Route(body=body.encode(), headers={"Content-Type": "application/rss+xml"})
        await FeedStore(db).add(org_id, site.url(f"/p/{n}.xml"), now=START)
    fetch, crawl = handlers(db, FakeClock(START), feed_concurrency=3)
    fetch.page_size = 2
    first = await fetch(ctx(START))
    fetched = collections.Counter(path for path, _ in site.requests)
    assert fetched == {f"/p/{n}.xml": 1 for n in range(11)}
    assert (first["feeds"], first["fetched"], first["jobs_created"], first["orgs"]) == (11, 11, 11, 1)
    assert await FeedStore(db).due(now=START) == []  # every feed rescheduled: a second pass finds none due
    assert (await fetch(ctx(START)))["feeds"] == 0
    everything = RunContext(2, "manual", "manual", START, START, {"all": True}, logging.getLogger("mediabeat.test"))
    again = await fetch(everything)
    assert again["feeds"] == 11 and collections.Counter(path for path, _ in site.requests) == {
        f"/p/{n}.xml": 2 for n in range(11)
    }
    # Three tasks with {"shard": "I/3"} split a pass: between them every feed once, none twice.
    site.requests.clear()
    later = START + timedelta(days=2)
    counts = []
    for index in range(3):
        params = {"shard": f"{index}/3"}
        counts.append(await fetch(RunContext(3, "manual", "manual", later, later, params, logging.getLogger())))
    assert sum(c["feeds"] for c in counts) == 11 and all(c["feeds"] in (3, 4) for c in counts)
    assert collections.Counter(path for path, _ in site.requests) == {f"/p/{n}.xml": 1 for n in range(11)}
    with pytest.raises(ValueError, match="shard"):
        await fetch(RunContext(4, "manual", "manual", later, later, {"shard": "3/3"}, logging.getLogger()))
    await crawl.aclose()
