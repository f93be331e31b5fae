"""Text that the databases cannot store (NUL, lone surrogates) arriving from feeds and requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from mediabeat.clock import FakeClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.audit import AuditStore
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.tables import audit_events
from mediabeat.domain.text import clean_json, clean_text
from tests.crawler_helpers import ctx, handlers
from tests.integration.api_fixtures import ApiEnv, assert_error
from tests.loopback import LoopbackServer, Route

START = datetime(2026, 1, 3, 9, 0, 30, tzinfo=UTC)


def test_clean_text_drops_nul_and_replaces_lone_surrogates() -> None:
    assert clean_text("a\x00b") == "ab"
    assert clean_text("x\ud800y\udfff") == "x\ufffdy\ufffd"
    assert clean_text("\ud83d\ude00") == "\U0001f600"  # a pair given as two code points is joined
    plain = "ordinary text, été"
    assert clean_text(plain) is plain
    assert clean_json({"k\x00": ["v\x00", {"n": 1, "s": "\udc80"}]}) == {"k": ["v", {"n": 1, "s": "\ufffd"}]}


@pytest.fixture
async def org_id(db: Database) -> AsyncIterator[int]:
    yield (await OrgStore(db).create("newsroom", now=START)).id


async def test_a_feed_title_with_nul_does_not_fail_the_hourly_fetch(
    db: Database, site: LoopbackServer, org_id: int
) -> None:
    """One hostile feed among good ones: every feed is updated and the run succeeds."""
    hostile = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Bad\x00Title</title>'
        b"<item><link>/story/nul</link><title>S\x00</title></item></channel></rss>"
    )
    good = b'<rss version="2.0"><channel><title>Good</title><item><link>/story/1</link></item></channel></rss>'
    site.routes["/hostile.xml"] = Route(body=hostile, headers={"Content-Type": "application/rss+xml"})
    site.routes["/good.xml"] = Route(body=good, headers={"Content-Type": "application/rss+xml"})
    await FeedStore(db).add(org_id, site.url("/hostile.xml"), now=START)
    await FeedStore(db).add(org_id, site.url("/good.xml"), now=START)
    fetch, crawl = handlers(db, FakeClock(START))
    try:
        result = await fetch(ctx(START))
    finally:
        await crawl.aclose()
    assert (result["feeds"], result["fetched"], result["failed"]) == (2, 2, 0)
    titles = {f.url.rsplit("/", 1)[1]: f.title for f in await FeedStore(db).list()}
    assert titles == {"hostile.xml": "BadTitle", "good.xml": "Good"}


async def test_comparisons_and_json_go_through_the_cleaning_types(db: Database, org_id: int) -> None:
    assert await ArticleStore(db).count(org_id=org_id, title="x\x00\ud800") == 0
    await AuditStore(db).record(action="test.nul", actor="a\x00b\ud800", details={"k\x00": "v\udfff"}, now=START)
    async with db.read() as conn:
        row = (await conn.execute(sa.select(audit_events).where(audit_events.c.actor == "ab\ufffd"))).one()
    assert row.details == {"k": "v\ufffd"}


NUL_REQUESTS = [
    ("POST", "/api/v1/auth/login", {"json": {"email": "a\x00@example.test", "password": "p\x00"}}),
    ("POST", "/api/v1/orgs", {"json": {"name": "org\x00"}}),
    ("POST", "/api/v1/feeds", {"json": {"url": "http://127.0.0.1/\x00feed.xml"}}),
    ("PATCH", "/api/v1/scheduler/tasks/nightly-cleanup", {"json": {"description": "d\x00"}}),
    ("POST", "/api/v1/tokens", {"json": {"name": "t\x00"}}),
    ("POST", "/api/v1/users", {"json": {"email": "u\x00@example.test", "password": "p" * 16, "role": "admin"}}),
    ("GET", "/api/v1/articles", {"params": {"q": "a\x00b"}}),
    ("GET", "/api/v1/audit", {"params": {"actor": "a\x00b"}}),
    ("GET", "/api/v1/scheduler/runs", {"params": {"task": "t\x00"}}),
    ("POST", "/api/v1/scheduler/tasks/nightly\x00cleanup/run", {}),
    ("GET", "/api/v1/scheduler/tasks/nightly\x00cleanup", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), NUL_REQUESTS, ids=[f"{m} {p}" for m, p, _ in NUL_REQUESTS])
async def test_nul_in_request_input_is_never_a_500(
    api: ApiEnv, method: str, path: str, kwargs: dict[str, object]
) -> None:
    async with api.admin() as client:
        response = await client.request(method, path.replace("\x00", "%00"), **kwargs)  # type: ignore[arg-type]
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_error(response, response.status_code)


@pytest.mark.parametrize("email", ["a@", "a b@example.test", "x@[127.0.0.1]", "a@@example.test", "a@host.local"])
async def test_the_api_creates_users_only_with_valid_email_addresses(api: ApiEnv, email: str) -> None:
    async with api.admin() as client:
        refused = await client.post(
            "/api/v1/users", json={"email": email, "password": "a-good-password-1", "role": "admin"}
        )
    error = assert_error(refused, 422, "invalid")
    assert error["details"][0]["field"] == "email", error


async def test_every_column_of_a_bulk_feed_update_is_cleaned(db: Database, org_id: int) -> None:
    from mediabeat.db.stores.feeds import FeedUpdate

    feed, _ = await FeedStore(db).add(org_id, "http://127.0.0.1:9/feed.xml", now=START)
    dirty = "x\x00\ud800"
    update = FeedUpdate(
        id=feed.id, url=feed.url, title=dirty, site_url=dirty, active=False, etag=dirty, last_modified=dirty,
        last_fetched_at=START, last_status="gone", last_error=dirty, consecutive_failures=1, next_fetch_at=None,
        disabled_reason=dirty,
    )  # fmt: skip
    assert await FeedStore(db).apply_updates([update], org_of={feed.id: org_id}, now=START) == 1
    stored = await FeedStore(db).get(feed.id)
    assert stored is not None and not stored.active
    assert {stored.title, stored.etag, stored.last_error, stored.disabled_reason} == {"x\ufffd"}
