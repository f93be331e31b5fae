"""WebSub end to end on loopback: discovery, subscription, verification, signed pushes, renewal; both databases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from mediabeat.app import create_app
from mediabeat.clock import FakeClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import JobStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.stores.websub import NewSubscription, WebSubStore
from mediabeat.demo.content import DemoSiteConfig, latest_articles
from mediabeat.demo.site import create_demo_app, running_demo_site
from mediabeat.domain.websub import SubscriptionState, signature_header
from mediabeat.settings import Settings
from mediabeat.tasks.base import SkipRun
from mediabeat.tasks.wiring import build_websub_renewal
from tests.crawler_helpers import TEST_SETTINGS, ctx, handlers
from tests.servers import free_port

START = datetime(2026, 1, 3, 9, 0, 30, tzinfo=UTC)
SITE = DemoSiteConfig(feed_size=5, article_interval_s=600)
SECRET = "s3cret-shared-with-the-hub"
TOKEN = "callback-token-for-tests"
# A loaded machine (2 shared cores) must not fail the end-to-end test: generous timeouts there.
PATIENT: dict[str, Any] = {"crawler_total_timeout": 60.0, "crawler_read_timeout": 30.0, "crawler_connect_timeout": 10.0}
FEED_BODY = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>http://127.0.0.1:9/</link>'
    b"<item><link>http://127.0.0.1:9/a/1.html</link></item><item><link>http://127.0.0.1:9/a/2.html</link></item>"
    b"</channel></rss>"
)


async def wait_for(check: Any, *, within: float = 90.0) -> Any:
    """Poll an async check until it returns something truthy (the deadline is generous: never a speed test)."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s")
        await asyncio.sleep(0.05)


@pytest.fixture
def demo_clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def demo(demo_clock: FakeClock) -> Iterator[tuple[str, Any]]:
    app = create_demo_app(SITE, now=demo_clock.now)
    with running_demo_site(app) as urls:
        yield urls[0], app.state.hub  # type: ignore[attr-defined]


@pytest.fixture
def app_url(database_url: str) -> Iterator[str]:
    """The MediaBeat app served on 127.0.0.1 by uvicorn, its public URL pointing at itself."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(database_url=database_url, public_url=url, enable_scheduler=False, **TEST_SETTINGS)
    with running_demo_site(create_app(settings), port=port, lifespan=True):
        yield url


@pytest.fixture
async def feed_id(db: Database) -> AsyncIterator[int]:
    org = await OrgStore(db).create("newsroom", now=START)
    feed, _ = await FeedStore(db).add(org.id, "http://127.0.0.1:9/feed.rss", now=START)
    yield feed.id


def renewal(db: Database, public_url: str | None, **overrides: Any) -> Any:
    return build_websub_renewal(Settings(**{**TEST_SETTINGS, "public_url": public_url, **overrides}), db)


async def test_a_published_article_is_pushed_by_the_demo_hub_and_queued_at_once(
    db: Database, demo: tuple[str, Any], demo_clock: FakeClock, app_url: str
) -> None:
    base, hub = demo
    org = await OrgStore(db).create("newsroom", now=START)
    feed, _ = await FeedStore(db).add(org.id, f"{base}/feeds/world.rss", now=START)
    fetch, crawl = handlers(db, FakeClock(START), **PATIENT)
    try:
        result = await fetch(ctx(datetime.now(UTC)))
        assert result["jobs_created"] == 5
    finally:
        await crawl.aclose()
    store = WebSubStore(db)
    sub = await store.for_feed(feed.id)
    assert sub is not None and sub.state == SubscriptionState.PENDING
    assert (sub.hub, sub.topic) == (f"{base}/hub", f"{base}/feeds/world.rss")

    counts = await renewal(db, app_url, **PATIENT)(ctx(datetime.now(UTC)))
    assert counts["requested"] == 1

    async def verified() -> bool:
        current = await store.for_feed(feed.id)
        return current is not None and current.state == SubscriptionState.VERIFIED

    await wait_for(verified)
    current = await store.for_feed(feed.id)
    assert current is not None and current.lease_seconds and current.lease_expires_at

    demo_clock.advance(SITE.article_interval_s)  # the demo publishes its next article
    newest = latest_articles(SITE, "world", demo_clock.now(), 1)[0]

    async def queued() -> bool:
        return any(j.url == base + newest.path for j in await JobStore(db).list_jobs(limit=100))

    await wait_for(queued)
    assert len(await JobStore(db).list_jobs(limit=100)) == 6

    async def acknowledged() -> bool:  # the hub notes the answer after our side has queued the jobs
        return any(status == 202 for _, status in hub.pushes)

    await wait_for(acknowledged)
    assert (await store.pushed_feed_ids([feed.id], now=datetime.now(UTC))) == {feed.id}


async def _subscription(db: Database, feed_id: int, *, state: str = "verified", attempts: int = 0) -> int:
    store = WebSubStore(db)
    org_id = (await FeedStore(db).get(feed_id)).org_id  # type: ignore[union-attr]
    topic = "http://127.0.0.1:9/feed.rss"
    new = NewSubscription(org_id, feed_id, "http://127.0.0.1:9/hub", topic, TOKEN, SECRET)
    await store.record_discovered([new], now=START)
    sub = await store.for_feed(feed_id)
    assert sub is not None
    await store.update(sub.id, {"state": state, "attempts": attempts}, now=START)
    return sub.id


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url, public_url="http://127.0.0.1:9", enable_scheduler=False)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    await app.state.services.close()


async def test_pushes_without_a_valid_signature_or_feed_are_acknowledged_ignored_and_recorded(
    db: Database, feed_id: int, client: httpx.AsyncClient
) -> None:
    await _subscription(db, feed_id)
    path = f"/websub/callback/{TOKEN}"
    cases = [
        ({}, FEED_BODY, "missing_signature"),
        ({"X-Hub-Signature": signature_header("not-the-secret", FEED_BODY)}, FEED_BODY, "bad_signature"),
        ({"X-Hub-Signature": "sha1=" + "0" * 40}, FEED_BODY, "unsupported_signature_method"),
        ({"X-Hub-Signature": signature_header(SECRET, b"<html>hello</html>")}, b"<html>hello</html>", "not_a_feed"),
    ]
    for headers, body, reason in cases:
        response = await client.post(path, content=body, headers=headers)
        assert response.status_code == 202 and reason in response.text
        sub = await WebSubStore(db).for_feed(feed_id)
        assert sub is not None and reason in (sub.last_error or "")
    assert await JobStore(db).list_jobs(limit=10) == []

    huge = b"<rss>" + b" " * (3 * 1024 * 1024)
    response = await client.post(path, content=huge, headers={"X-Hub-Signature": signature_header(SECRET, huge)})
    assert response.status_code == 202 and "too_large" in response.text

    signed = {"X-Hub-Signature": signature_header(SECRET, FEED_BODY)}
    response = await client.post(path, content=FEED_BODY, headers=signed)
    assert response.status_code == 202 and "queued 2 of 2" in response.text
    assert len(await JobStore(db).list_jobs(limit=10)) == 2
    sub = await WebSubStore(db).for_feed(feed_id)
    assert sub is not None and sub.last_error is None and sub.last_push_at is not None
    assert (await client.post("/websub/callback/unknown", content=FEED_BODY, headers=signed)).status_code == 410


async def test_verification_echoes_the_challenge_only_for_our_request_and_topic(
    db: Database, feed_id: int, client: httpx.AsyncClient
) -> None:
    await _subscription(db, feed_id, state="pending", attempts=0)
    path = f"/websub/callback/{TOKEN}"
    query = {"hub.mode": "subscribe", "hub.topic": "http://127.0.0.1:9/feed.rss", "hub.challenge": "abc123"}
    # No request of ours is outstanding yet: an unsolicited verification is refused.
    assert (await client.get(path, params=query)).status_code == 404
    sub = await WebSubStore(db).for_feed(feed_id)
    assert sub is not None
    await WebSubStore(db).update(sub.id, {"attempts": 1}, now=START)
    wrong = {**query, "hub.topic": "http://127.0.0.1:9/other.rss"}
    assert (await client.get(path, params=wrong)).status_code == 404
    assert (await client.get("/websub/callback/nope", params=query)).status_code == 404
    assert (await client.get(path, params={"hub.mode": "subscribe"})).status_code == 404
    response = await client.get(path, params={**query, "hub.lease_seconds": "3600"})
    assert response.status_code == 200 and response.text == "abc123"
    sub = await WebSubStore(db).for_feed(feed_id)
    assert sub is not None and sub.state == SubscriptionState.VERIFIED and sub.lease_seconds == 3600
    assert sub.lease_expires_at is not None and sub.next_attempt_at is not None
    assert sub.next_attempt_at < sub.lease_expires_at and sub.attempts == 0

    denied = {"hub.mode": "denied", "hub.topic": query["hub.topic"], "hub.reason": "not allowed"}
    assert (await client.get(path, params=denied)).status_code == 200
    sub = await WebSubStore(db).for_feed(feed_id)
    assert sub is not None and sub.state == SubscriptionState.DENIED and "not allowed" in (sub.last_error or "")
    assert sub.next_attempt_at is None


class SilentHub:
    """A hub that accepts subscription requests (202) and never verifies them; it records each form."""

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []

    async def handle(self, request: Request) -> Response:
        self.forms.append({k: str(v) for k, v in (await request.form()).items()})
        return PlainTextResponse("accepted\n", status_code=202)


@pytest.fixture
def silent_hub() -> Iterator[tuple[str, SilentHub]]:
    hub = SilentHub()
    with running_demo_site(Starlette(routes=[Route("/hub", hub.handle, methods=["POST"])])) as urls:
        yield urls[0] + "/hub", hub


async def _point_at(db: Database, feed_id: int, hub_url: str) -> int:
    store = WebSubStore(db)
    sub = await store.for_feed(feed_id)
    assert sub is not None
    await store.update(sub.id, {"hub": hub_url, "next_attempt_at": START}, now=START)
    return sub.id


async def test_a_hub_that_never_verifies_is_given_up_after_the_bound(
    db: Database, feed_id: int, silent_hub: tuple[str, SilentHub]
) -> None:
    hub_url, hub = silent_hub
    await _subscription(db, feed_id, state="pending")
    await _point_at(db, feed_id, hub_url)
    renew = renewal(db, "http://127.0.0.1:9", websub_verify_attempts=2, websub_retry_seconds=60)
    clock = FakeClock(START)
    for _ in range(2):
        assert (await renew(ctx(clock.now())))["requested"] == 1
        with pytest.raises(SkipRun):  # not due again until the retry time
            await renew(ctx(clock.now()))
        clock.advance(hours=1)
    assert len(hub.forms) == 2
    form = hub.forms[0]
    assert form["hub.mode"] == "subscribe" and form["hub.secret"] == SECRET
    assert form["hub.callback"] == f"http://127.0.0.1:9/websub/callback/{TOKEN}"
    result = await renew(ctx(clock.now()))
    assert result["given_up"] == 1 and len(hub.forms) == 2
    sub = await WebSubStore(db).for_feed(feed_id)
    assert sub is not None and sub.state == SubscriptionState.DENIED and sub.next_attempt_at is None
    assert "a hub that never verifies" in (sub.last_error or "")


async def test_a_lease_is_renewed_before_it_ends_and_expires_without_a_renewal(
    db: Database, feed_id: int, silent_hub: tuple[str, SilentHub]
) -> None:
    hub_url, hub = silent_hub
    sub_id = await _subscription(db, feed_id, state="verified")
    store = WebSubStore(db)
    lease = timedelta(hours=10)
    renew_at = START + timedelta(hours=8)
    changes = {"hub": hub_url, "lease_seconds": 36000, "lease_expires_at": START + lease, "next_attempt_at": renew_at}
    await store.update(sub_id, changes, now=START)
    renew = renewal(db, "http://127.0.0.1:9", websub_retry_seconds=3600)
    clock = FakeClock(START + timedelta(hours=7))
    with pytest.raises(SkipRun):
        await renew(ctx(clock.now()))
    clock.advance(hours=1)
    assert (await renew(ctx(clock.now())))["requested"] == 1
    assert hub.forms[-1]["hub.mode"] == "subscribe" and hub.forms[-1]["hub.lease_seconds"] == str(10 * 86400)
    sub = await store.for_feed(feed_id)
    assert sub is not None and sub.state == SubscriptionState.VERIFIED and sub.attempts == 1
    assert sub.next_attempt_at == clock.now() + timedelta(hours=1)
    clock.advance(hours=3)  # past the lease's end, the renewal never verified
    await renew(ctx(clock.now()))
    sub = await store.for_feed(feed_id)
    assert sub is not None and sub.state == SubscriptionState.EXPIRED and len(hub.forms) == 2
    assert await store.pushed_feed_ids([feed_id], now=clock.now()) == set()


async def test_a_hub_on_a_private_address_is_refused_before_any_connection(db: Database, feed_id: int) -> None:
    await _subscription(db, feed_id, state="pending")
    await _point_at(db, feed_id, "http://10.1.2.3:8080/hub")
    with pytest.raises(Exception, match="failed"):
        await renewal(db, "http://127.0.0.1:9")(ctx(START))
    sub = await WebSubStore(db).for_feed(feed_id)
    assert sub is not None and sub.state == SubscriptionState.PENDING
    assert "10.1.2.3" in (sub.last_error or "") and "subscription request" in (sub.last_error or "")


async def test_without_a_public_url_push_is_off_and_says_why(db: Database, feed_id: int) -> None:
    await _subscription(db, feed_id, state="pending")
    with pytest.raises(SkipRun, match="MEDIABEAT_PUBLIC_URL"):
        await renewal(db, None)(ctx(START))
