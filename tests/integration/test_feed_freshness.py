"""Feed discovery and validation on add, per-feed schedules, body-hash change detection, dormancy and
`feeds fetch ID`: on loopback servers, with a FakeClock for the schedules, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from mediabeat.clock import FakeClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import JobStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.domain.content import SYSTEM, FeedCheckFailed
from mediabeat.domain.scheduler import AllWorkFailed
from mediabeat.tasks.rss_fetch import RssFetch
from tests.crawler_helpers import ctx, handlers
from tests.integration.api_fixtures import ApiEnv, assert_error, make_env
from tests.integration.test_content_services import cli, ok
from tests.loopback import LoopbackServer, Route

START = datetime(2026, 1, 3, 9, 0, 0, tzinfo=UTC)
RSS_TYPE = {"Content-Type": "application/rss+xml"}
LOOPBACK = {"MEDIABEAT_CRAWLER_ALLOW_PRIVATE_NETWORKS": "true"}


def rss(links: list[str], *, title: str = "News", dates: list[datetime] | None = None, ttl: int | None = None) -> bytes:
    items = "".join(
        f"<item><link>{link}</link><title>{link}</title>"
        + (f"<pubDate>{format_datetime(dates[i], usegmt=True)}</pubDate>" if dates else "")
        + "</item>"
        for i, link in enumerate(links)
    )
    extra = f"<ttl>{ttl}</ttl>" if ttl else ""
    return f'<rss version="2.0"><channel><title>{title}</title>{extra}{items}</channel></rss>'.encode()


def page(*links: str) -> bytes:
    head = "".join(links)
    return f"<!DOCTYPE html><html><head><title>Site</title>{head}</head><body><p>news</p></body></html>".encode()


def html_route(body: bytes) -> Route:
    return Route(body=body, headers={"Content-Type": "text/html; charset=utf-8"})


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[ApiEnv]:
    made = await make_env(
        database_url,
        crawler_allow_private_networks=True,
        crawler_connect_timeout=2.0,
        crawler_read_timeout=1.0,
        crawler_total_timeout=3.0,
    )
    yield made
    await made.services.close()


# --- discovery and validation -------------------------------------------------------------------------


async def test_a_site_address_finds_its_feeds_through_link_rel_alternate(env: ApiEnv, site: LoopbackServer) -> None:
    site.routes["/"] = html_route(
        page(
            '<link rel="alternate" type="application/rss+xml" href="/news.rss">',
            '<link rel="alternate" type="application/atom+xml" href="feeds/sport.atom">',
            '<link rel="stylesheet" href="/style.css">',
        )
    )
    site.routes["/news.rss"] = Route(body=rss(["/a", "/b", "/c"], title="Main news"), headers=RSS_TYPE)
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>Sport</title>'
        '<entry><title>x</title><link href="/s1"/></entry></feed>'
    )
    site.routes["/feeds/sport.atom"] = Route(body=atom.encode(), headers={"Content-Type": "application/atom+xml"})
    feeds = env.services.content.feeds

    done = await feeds.add_address(env.org_id, site.url("/"), SYSTEM)
    assert done.checked and [(f.url, created) for f, created in done.feeds] == [(site.url("/news.rss"), True)]
    assert [(f.title, f.entries) for f in done.found] == [("Main news", 3)]
    assert done.feeds[0][0].title == "Main news"
    assert done.also_found == [site.url("/feeds/sport.atom")]  # the first is added; the others are named

    every = await feeds.add_address(env.org_id, site.url("/"), SYSTEM, all_feeds=True)
    assert [(f.url, created) for f, created in every.feeds] == [
        (site.url("/news.rss"), False),
        (site.url("/feeds/sport.atom"), True),
    ]
    # A feed's own URL is fetched and parsed once, and added as it is.
    direct = await feeds.add_address(env.other_org_id, site.url("/news.rss"), SYSTEM)
    assert [(f.url, f.entries) for f in direct.found] == [(site.url("/news.rss"), 3)]


async def test_a_page_without_feed_links_falls_back_to_the_usual_paths(env: ApiEnv, site: LoopbackServer) -> None:
    site.routes["/"] = html_route(page())
    site.routes["/feed.xml"] = Route(body=rss(["/a"]), headers=RSS_TYPE)
    done = await env.services.content.feeds.add_address(env.org_id, site.url("/"), SYSTEM)
    assert [f.url for f, _ in done.feeds] == [site.url("/feed.xml")]
    tried = [path for path, _ in site.requests]
    assert tried[:5] == ["/", "/feed", "/rss.xml", "/atom.xml", "/feed.xml"]


async def test_feed_links_to_private_addresses_are_refused(env: ApiEnv, site: LoopbackServer) -> None:
    site.routes["/"] = html_route(
        page(
            '<link rel="alternate" type="application/rss+xml" href="http://10.255.255.1/feed.xml">',
            '<link rel="alternate" type="application/rss+xml" href="http://169.254.169.254/latest/feed">',
        )
    )
    with pytest.raises(FeedCheckFailed) as refused:
        await env.services.content.feeds.add_address(env.org_id, site.url("/"), SYSTEM)
    message = str(refused.value)
    assert message.startswith(f"no feed found at {site.url('/')}")
    assert (
        "http://10.255.255.1/feed.xml: 10.255.255.1 is an address the crawler never fetches (private network); "
        "list its range in MEDIABEAT_CRAWLER_ALLOWED_NETWORKS to allow it"
    ) in message
    assert "http://169.254.169.254/latest/feed: 169.254.169.254 is an address the crawler never fetches" in message
    assert message.count("refused") == 0 and message.count("never fetches") == 2, message
    assert await env.services.content.feeds.list(org_id=env.org_id) == []


async def test_what_is_not_a_feed_is_refused_with_its_reason(env: ApiEnv, site: LoopbackServer) -> None:
    site.routes["/text"] = Route(body=b"hello, no feed here", headers={"Content-Type": "text/plain"})
    site.routes["/page"] = html_route(page())
    feeds = env.services.content.feeds
    for path, reason in (
        ("/text", f"{site.url('/text')}: not a readable RSS or Atom feed: syntax error"),
        ("/gone", "HTTP 404"),
        ("/page", "no feed found at"),
    ):
        with pytest.raises(FeedCheckFailed) as refused:
            await feeds.add_address(env.org_id, site.url(path), SYSTEM)
        assert reason in str(refused.value), (path, str(refused.value))
        assert "<unknown>" not in str(refused.value)  # the XML parser's words, without its position prefix
    # Unchecked, an unreachable feed can still be added.
    done = await feeds.add_address(env.org_id, site.url("/gone"), SYSTEM, check=False)
    assert not done.checked and done.feeds[0][1] and done.found == []


async def test_a_json_feed_is_a_feed(env: ApiEnv, site: LoopbackServer) -> None:
    body = b'{"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": [{"id": "1", "url": "/j1"}]}'
    site.routes["/"] = html_route(page('<link rel="alternate" type="application/feed+json" href="/feed.json">'))
    site.routes["/feed.json"] = Route(body=body, headers={"Content-Type": "application/feed+json"})
    done = await env.services.content.feeds.add_address(env.org_id, site.url("/"), SYSTEM)
    assert [(f.url, f.title, f.entries) for f in done.found] == [(site.url("/feed.json"), "J", 1)]


async def test_add_and_fetch_through_the_api(env: ApiEnv, site: LoopbackServer) -> None:
    site.routes["/"] = html_route(page('<link rel="alternate" type="application/rss+xml" href="/news.rss">'))
    site.routes["/news.rss"] = Route(body=rss(["/a", "/b", "/c"]), headers=RSS_TYPE)
    site.routes["/text"] = Route(body=b"hello", headers={"Content-Type": "text/plain"})
    async with env.member() as client:
        added = await client.post("/api/v1/feeds", json={"url": site.url("/")})
        assert added.status_code == 201, added.text
        body = added.json()
        assert body["url"] == site.url("/news.rss") and body["checked"] is True
        assert body["found"] == [{"url": site.url("/news.rss"), "title": "News", "entries": 3}]
        again = await client.post("/api/v1/feeds", json={"url": site.url("/")})
        assert again.status_code == 200
        error = assert_error(await client.post("/api/v1/feeds", json={"url": site.url("/text")}), 422)
        assert "not a readable RSS or Atom feed" in str(error)
        unchecked = await client.post("/api/v1/feeds", json={"url": site.url("/later.rss"), "check": False})
        assert unchecked.status_code == 201 and unchecked.json()["checked"] is False

        fetched = await client.post(f"/api/v1/feeds/{body['id']}/fetch")
        assert fetched.status_code == 200, fetched.text
        report = fetched.json()
        assert (report["outcome"], report["entries"], report["new_jobs"]) == ("fetched", 3, 3)
        assert report["feed"]["interval_reason"] == "first fetch, entries undated"
        assert report["feed"]["fetch_interval_s"] == 3600 and report["feed"]["next_fetch_at"]
        listed = (await client.get("/api/v1/feeds")).json()["items"]
        assert {f["interval_reason"] for f in listed} == {"first fetch, entries undated", None}
    async with env.client(env.other_token) as other:
        assert_error(await other.post(f"/api/v1/feeds/{body['id']}/fetch"), 404)


async def test_add_show_and_fetch_through_the_cli(env: ApiEnv, site: LoopbackServer) -> None:
    site.routes["/"] = html_route(page('<link rel="alternate" type="application/rss+xml" href="/news.rss">'))
    site.routes["/news.rss"] = Route(body=rss(["/a", "/b"], title="Wire"), headers=RSS_TYPE)
    printed = " ".join(ok(await cli(env, "feeds", "add", site.url("/"), "--org", "api-org", **LOOPBACK)).split())
    assert "added feed" in printed and site.url("/news.rss") in printed and "(Wire, 2 entries)" in printed
    missing = await cli(env, "feeds", "add", site.url("/none.rss"), "--org", "api-org", **LOOPBACK)
    assert missing.exit_code != 0 and "HTTP 404" in missing.stderr, missing
    ok(await cli(env, "feeds", "add", site.url("/none.rss"), "--org", "api-org", "--no-check", **LOOPBACK))
    # Unchecked, an address the crawler would refuse at every fetch is refused now, before anything is stored.
    metadata = await cli(env, "feeds", "add", "http://169.254.169.254/feed", "--org", "api-org", "--no-check")
    assert metadata.exit_code != 0 and "169.254.169.254 is an address the crawler never fetches" in metadata.stderr
    assert "cloud metadata" in metadata.stderr and "Traceback" not in metadata.stderr, metadata
    loopback = await cli(env, "feeds", "add", site.url("/other.rss"), "--org", "api-org", "--no-check")
    assert loopback.exit_code != 0 and "MEDIABEAT_CRAWLER_ALLOW_PRIVATE_NETWORKS" in loopback.stderr, loopback
    feed = (await env.services.content.feeds.list(org_id=env.org_id))[0]

    fetched = " ".join(ok(await cli(env, "feeds", "fetch", str(feed.id), **LOOPBACK)).split())  # as wrapped
    assert "fetched" in fetched and "2 new crawl jobs queued" in fetched and "first fetch, entries undated" in fetched
    again = " ".join(ok(await cli(env, "feeds", "fetch", str(feed.id), **LOOPBACK)).split())
    assert "unchanged" in again and "0 new crawl jobs queued" in again
    shown = ok(await cli(env, "feeds", "show", str(feed.id)))
    assert "feed unchanged seen before" in shown
    failing = await cli(env, "feeds", "fetch", str(feed.id + 1), **LOOPBACK)
    assert failing.exit_code == 1 and "HTTP 404" in failing.stdout
    unknown = await cli(env, "feeds", "fetch", "999999")
    assert unknown.exit_code != 0 and "no feed with id 999999" in unknown.stderr


async def test_the_window_is_shown_by_feeds_show_and_the_api(env: ApiEnv, site: LoopbackServer) -> None:
    site.routes["/news.rss"] = Route(body=rss([f"/w{i}" for i in range(7)]), headers=RSS_TYPE)
    async with env.member() as client:
        added = (await client.post("/api/v1/feeds", json={"url": site.url("/news.rss")})).json()
        before = (await client.get(f"/api/v1/feeds/{added['id']}")).json()
        assert (await client.post(f"/api/v1/feeds/{added['id']}/fetch")).status_code == 200
        after = (await client.get(f"/api/v1/feeds/{added['id']}")).json()
        schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["FeedOut"]["properties"]
    assert (before["window_entries"], after["window_entries"]) == (None, 7)
    assert "last parse" in schema["window_entries"]["description"]
    shown = ok(await cli(env, "feeds", "show", str(added["id"])))
    rows = {
        cells[1].strip(): cells[2].strip()
        for cells in (line.split("│") for line in shown.splitlines())
        if len(cells) == 4
    }
    assert rows["entries listed"] == "7 at the last parse", shown
    as_json = ok(await cli(env, "feeds", "show", str(added["id"]), "--json"))
    assert '"window_entries": 7' in as_json


# --- schedules ----------------------------------------------------------------------------------------


async def run(fetch: RssFetch, now: datetime) -> dict[str, Any]:
    """One hourly-rss-fetch run's counts, also when every feed failed."""
    try:
        return dict(await fetch(ctx(now)))
    except AllWorkFailed as failed:
        return dict(failed.result)


@pytest.fixture
async def org(db: Database) -> int:
    return (await OrgStore(db).create("newsroom", now=START)).id


async def test_each_feed_gets_its_own_interval_and_reason(db: Database, site: LoopbackServer, org: int) -> None:
    hourly = [START - timedelta(hours=h) for h in range(10)]
    site.routes["/hourly.xml"] = Route(body=rss([f"/h{i}" for i in range(10)], dates=hourly), headers=RSS_TYPE)
    site.routes["/ttl.xml"] = Route(body=rss([f"/t{i}" for i in range(10)], dates=hourly, ttl=120), headers=RSS_TYPE)
    site.routes["/cached.xml"] = Route(body=rss(["/c"]), headers={**RSS_TYPE, "Cache-Control": "public, max-age=10800"})
    site.routes["/undated.xml"] = Route(body=rss(["/u"]), headers=RSS_TYPE)
    store = FeedStore(db)
    ids = {
        name: (await store.add(org, site.url(f"/{name}.xml"), now=START))[0].id
        for name in ("hourly", "ttl", "cached", "undated")
    }
    clock = FakeClock(START)
    fetch, crawl = handlers(db, clock)
    try:
        await fetch(ctx(START))
        feeds = {f.id: f for f in await store.list()}
        got = {name: (feeds[i].fetch_interval_s, feeds[i].interval_reason) for name, i in ids.items()}
        assert got == {
            "hourly": (900, "publishing rate: about 168 entries a week, from its 10 entries of the last week"),
            "ttl": (7200, "the server asks for RSS ttl 2 h"),
            "cached": (10800, "the server asks for Cache-Control max-age 3.0 h".replace("3.0 h", "3 h")),
            "undated": (3600, "first fetch, entries undated"),
        }
        assert feeds[ids["hourly"]].next_fetch_at == START + timedelta(seconds=900)
        assert feeds[ids["hourly"]].entries_per_week == 168 and feeds[ids["hourly"]].last_new_entries == 10
        # Only the due feed is fetched at the next wake-up.
        later = await fetch(ctx(START + timedelta(seconds=901)))
        assert later["feeds"] == 1
    finally:
        await crawl.aclose()


def publishing_every(minutes: int, prefix: str) -> Route:
    """An RSS feed of 20 entries, one every `minutes` up to START."""
    dates = [START - timedelta(minutes=minutes * i) for i in range(20)]
    return Route(body=rss([f"/{prefix}{i}" for i in range(20)], dates=dates), headers=RSS_TYPE)


async def test_a_feed_publishing_every_five_minutes_is_polled_at_the_minimum(
    db: Database, site: LoopbackServer, org: int
) -> None:
    # Every 5 minutes (2,016 a week): more often than every 7.5 min (half the 15-minute target delay), so a
    # server failing between two polls could take a whole interval's entries: polled every 5 min instead.
    site.routes["/busiest.xml"] = publishing_every(5, "c")
    store = FeedStore(db)
    feed, _ = await store.add(org, site.url("/busiest.xml"), now=START)
    fetch, crawl = handlers(db, FakeClock(START))
    try:
        await run(fetch, START)
        polled = await store.get(feed.id)
        assert polled is not None and (polled.fetch_interval_s, polled.entries_per_week) == (300, 2016)
        assert polled.interval_reason == (
            "publishing rate: about 2016 entries a week, from its 20 entries of the last week; "
            "an entry more often than every 7.5 min: polled at the minimum"
        )
    finally:
        await crawl.aclose()


async def test_a_busy_feed_that_fails_is_retried_at_its_healthy_interval(
    db: Database, site: LoopbackServer, org: int
) -> None:
    # Every 10 minutes (1,008 a week): healthy every 7.5 min. Failing, its backoff stops there, so once its
    # server is back the feed is read before its window turns over; the server's Retry-After still wins.
    site.routes["/busy.xml"] = publishing_every(10, "b")
    store = FeedStore(db)
    feed, _ = await store.add(org, site.url("/busy.xml"), now=START)
    fetch, crawl = handlers(db, FakeClock(START))
    try:
        await run(fetch, START)
        healthy = await store.get(feed.id)
        assert healthy is not None and (healthy.fetch_interval_s, healthy.entries_per_week) == (450, 1008)
        site.routes["/busy.xml"] = Route(status=500, body=b"down")
        now = START
        waits = []
        for _ in range(3):
            now += timedelta(hours=1)
            await run(fetch, now)
            failing = await store.get(feed.id)
            assert failing is not None and failing.next_fetch_at is not None
            waits.append(((failing.next_fetch_at - now).total_seconds(), failing.interval_reason))
        assert [w for w, _ in waits] == [300, 450, 450]
        assert waits[2][1] == "backoff after 3 failures in a row, retried at least every 7.5 min (its publishing rate)"
        site.routes["/busy.xml"] = Route(status=503, body=b"busy", headers={"Retry-After": "3600"})
        await run(fetch, now + timedelta(hours=1))
        asked = await store.get(feed.id)
        assert asked is not None and asked.fetch_interval_s == 3600 and "Retry-After" in (asked.interval_reason or "")
    finally:
        await crawl.aclose()


async def test_the_window_is_stored_and_a_young_windows_rate_ages_while_the_body_stays_the_same(
    db: Database, site: LoopbackServer, org: int
) -> None:
    # A young feed: five entries in a 10-minute burst that ended an hour ago (four gaps over 70 minutes).
    burst = [START - timedelta(minutes=60 + 150 * k / 60) for k in range(5)]
    site.routes["/young.xml"] = Route(body=rss([f"/y{i}" for i in range(5)], dates=burst), headers=RSS_TYPE)
    store = FeedStore(db)
    feed, _ = await store.add(org, site.url("/young.xml"), now=START)
    fetch, crawl = handlers(db, FakeClock(START))
    try:
        await run(fetch, START)
        parsed = await store.get(feed.id)
        assert parsed is not None and parsed.window_entries == 5
        assert parsed.entries_per_week == int(4 * 7 * 86400 / 4200)
        later = START + timedelta(hours=6)
        await run(fetch, later)  # the same body: not parsed, the rate aged by the six quiet hours
        aged = await store.get(feed.id)
        assert aged is not None and aged.last_status == "unchanged" and aged.window_entries == 5
        assert aged.entries_per_week == int(4 * 7 * 86400 / (4200 + 6 * 3600))
        assert aged.fetch_interval_s is not None and aged.fetch_interval_s > (parsed.fetch_interval_s or 0)
    finally:
        await crawl.aclose()


async def test_a_lying_etag_does_not_hide_a_changed_body(db: Database, site: LoopbackServer, org: int) -> None:
    bodies = [rss(["/a", "/b", "/c"])]

    def answer(headers: dict[str, str]) -> Route:  # the same ETag whatever the body, and never a 304
        return Route(body=bodies[-1], headers={**RSS_TYPE, "ETag": '"always-the-same"'})

    site.routes["/feed.xml"] = Route(dynamic=answer)
    feed, _ = await FeedStore(db).add(org, site.url("/feed.xml"), now=START)
    clock = FakeClock(START)
    fetch, crawl = handlers(db, clock)
    try:
        first = await fetch(ctx(START))
        assert (first["fetched"], first["jobs_created"]) == (1, 3)
        same = await fetch(ctx(START + timedelta(hours=1)))
        assert (same["unchanged"], same["fetched"], same["jobs_created"]) == (1, 0, 0)
        assert site.requests[-1][1].get("if-none-match") == '"always-the-same"'
        unchanged = await FeedStore(db).get(feed.id)
        assert unchanged is not None and unchanged.last_status == "unchanged" and unchanged.last_new_entries == 0
        assert unchanged.fetch_interval_s == 7200  # nothing new: polled less often
        bodies.append(rss(["/d", "/a", "/b", "/c"]))
        changed = await fetch(ctx(START + timedelta(hours=3)))
        assert (changed["fetched"], changed["jobs_created"]) == (1, 1)
        assert {j.url for j in await JobStore(db).list_jobs()} == {site.url(p) for p in ("/a", "/b", "/c", "/d")}
    finally:
        await crawl.aclose()


async def test_a_failing_feed_turns_dormant_and_comes_back(db: Database, site: LoopbackServer, org: int) -> None:
    site.routes["/flaky.xml"] = Route(status=500, body=b"down")
    site.routes["/gone.xml"] = Route(status=410, body=b"gone")
    store = FeedStore(db)
    flaky, _ = await store.add(org, site.url("/flaky.xml"), now=START)
    gone, _ = await store.add(org, site.url("/gone.xml"), now=START)
    clock = FakeClock(START)
    fetch, crawl = handlers(db, clock, feed_max_failures=2)
    try:
        first = await run(fetch, START)
        assert (first["failed"], first["disabled"], first["dormant"]) == (2, 1, 0)
        after = await store.get(flaky.id)
        assert after is not None and after.next_fetch_at == START + timedelta(minutes=5)
        assert after.interval_reason == "backoff after 1 failure in a row"
        removed = await store.get(gone.id)
        assert removed is not None and not removed.active and "410" in (removed.disabled_reason or "")

        second = await run(fetch, START + timedelta(minutes=5))
        assert second["dormant"] == 1
        dormant = await store.get(flaky.id)
        assert dormant is not None and dormant.active and dormant.dormant_since == START + timedelta(minutes=5)
        assert dormant.next_fetch_at == START + timedelta(minutes=5, days=30)
        assert (await run(fetch, START + timedelta(days=29)))["feeds"] == 0  # left alone while dormant

        site.routes["/flaky.xml"] = Route(body=rss(["/back"]), headers=RSS_TYPE)
        back = await run(fetch, START + timedelta(minutes=5, days=30))
        assert (back["fetched"], back["jobs_created"]) == (1, 1)
        alive = await store.get(flaky.id)
        assert alive is not None and alive.dormant_since is None and alive.consecutive_failures == 0
        assert alive.fetch_interval_s == 3600
    finally:
        await crawl.aclose()


async def test_retry_after_sets_the_next_fetch(db: Database, site: LoopbackServer, org: int) -> None:
    site.routes["/busy.xml"] = Route(status=429, body=b"slow down", headers={"Retry-After": "7200"})
    feed, _ = await FeedStore(db).add(org, site.url("/busy.xml"), now=START)
    fetch, crawl = handlers(db, FakeClock(START))
    try:
        await run(fetch, START)
    finally:
        await crawl.aclose()
    after = await FeedStore(db).get(feed.id)
    assert after is not None and after.next_fetch_at == START + timedelta(hours=2)
    assert (after.interval_reason or "").startswith("the server asks for Retry-After 2 h")


async def test_the_hourly_policy_keeps_every_feed_an_hour_apart(db: Database, site: LoopbackServer, org: int) -> None:
    busy = [START - timedelta(minutes=5 * i) for i in range(20)]
    site.routes["/busy.xml"] = Route(body=rss([f"/b{i}" for i in range(20)], dates=busy), headers=RSS_TYPE)
    feed, _ = await FeedStore(db).add(org, site.url("/busy.xml"), now=START)
    fetch, crawl = handlers(db, FakeClock(START), feed_policy="hourly")
    try:
        await run(fetch, START)
    finally:
        await crawl.aclose()
    after = await FeedStore(db).get(feed.id)
    assert after is not None and after.fetch_interval_s == 3600 and after.interval_reason == "fixed hourly policy"


def test_migration_0014_makes_feeds_disabled_for_failing_dormant_and_wakes_the_fetch_every_minute(
    database_url: str,
) -> None:
    import sqlalchemy as sa
    from alembic import command

    from mediabeat.db import migrate
    from mediabeat.db.engine import sync_url

    engine = sa.create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            config = migrate.alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "0010")
            conn.commit()
            org = conn.execute(
                sa.text("INSERT INTO organizations (name, is_demo, created_at) VALUES ('m', false, :t) RETURNING id"),
                {"t": START},
            ).scalar_one()
            for url, reason in (
                ("http://127.0.0.1/failing.xml", "disabled after 10 consecutive failures; last: HTTP 500"),
                ("http://127.0.0.1/by-hand.xml", "disabled by a user"),
            ):
                conn.execute(
                    sa.text(
                        "INSERT INTO feeds (org_id, url, active, consecutive_failures, disabled_reason, priority,"
                        " created_at, updated_at) VALUES (:o, :u, false, 10, :r, 0, :t, :t)"
                    ),
                    {"o": org, "u": url, "r": reason, "t": START},
                )
            conn.commit()
        migrate.upgrade(database_url)
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT url, active FROM feeds WHERE org_id = :o"), {"o": org})
            rows = {url: bool(active) for url, active in found}
            assert rows == {"http://127.0.0.1/failing.xml": True, "http://127.0.0.1/by-hand.xml": False}
            dormant = conn.execute(sa.text("SELECT dormant_since FROM feeds WHERE url LIKE '%failing%'")).scalar()
            assert dormant is not None
            cron = conn.execute(sa.text("SELECT cron FROM scheduler_tasks WHERE name = 'hourly-rss-fetch'")).scalar()
            assert cron == "* * * * *"
            conn.execute(sa.text("DELETE FROM feeds WHERE org_id = :o"), {"o": org})
            conn.execute(sa.text("DELETE FROM organizations WHERE id = :o"), {"o": org})
            conn.commit()
    finally:
        engine.dispose()
