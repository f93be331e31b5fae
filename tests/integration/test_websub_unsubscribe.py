"""WebSub unsubscribe: a deleted or disabled feed, a removed organisation or a changed hub ends its subscription.

The hub is asked to stop (hub.mode=unsubscribe), only an unsubscribe we asked for is confirmed, and
pushes for the ended subscription get 410 at once. Both databases; the demo hub on loopback.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from mediabeat.app import create_app
from mediabeat.clock import FakeClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.stores.websub import NewSubscription, WebSubStore
from mediabeat.db.tables import feeds as feeds_t
from mediabeat.demo.content import DemoSiteConfig
from mediabeat.demo.site import create_demo_app, running_demo_site
from mediabeat.domain.content import SYSTEM
from mediabeat.domain.websub import SubscriptionState, UnsubscribeState, signature_header
from mediabeat.settings import Settings
from mediabeat.tasks.base import SkipRun
from mediabeat.tasks.wiring import build_websub_renewal
from tests.crawler_helpers import TEST_SETTINGS, ctx
from tests.integration.api_fixtures import ApiEnv
from tests.integration.test_content_services import cli, ok
from tests.integration.test_websub import FEED_BODY, PATIENT, SECRET, TOKEN, SilentHub, wait_for
from tests.servers import free_port

START = datetime(2026, 1, 3, 9, 0, 30, tzinfo=UTC)
SITE = DemoSiteConfig(feed_size=5, article_interval_s=600)
TOPIC = "http://127.0.0.1:9/feed.rss"
PUBLIC = "http://127.0.0.1:9"


def renewal(db: Database, public_url: str | None, **overrides: Any) -> Any:
    return build_websub_renewal(Settings(**{**TEST_SETTINGS, "public_url": public_url, **overrides}), db)


@pytest.fixture
def silent_hub() -> Iterator[tuple[str, SilentHub]]:
    from starlette.applications import Starlette
    from starlette.routing import Route

    hub = SilentHub()
    with running_demo_site(Starlette(routes=[Route("/hub", hub.handle, methods=["POST"])])) as urls:
        yield urls[0] + "/hub", hub


async def _feed_with_subscription(
    db: Database,
    hub: str,
    *,
    state: str = "verified",
    attempts: int = 1,
    topic: str = TOPIC,
    org: str = "newsroom",
    token: str = TOKEN,
) -> tuple[int, int]:
    """A feed with a subscription the hub may hold (verified, or asked for); returns (org id, feed id)."""
    org_record = await OrgStore(db).create(org, now=START)
    feed, _ = await FeedStore(db).add(org_record.id, topic, now=START)
    store = WebSubStore(db)
    await store.record_discovered([NewSubscription(org_record.id, feed.id, hub, topic, token, SECRET)], now=START)
    sub = await store.for_feed(feed.id)
    assert sub is not None
    await store.update(sub.id, {"state": state, "attempts": attempts}, now=START)
    return org_record.id, feed.id


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=database_url, public_url=PUBLIC, enable_scheduler=False))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    await app.state.services.close()


@pytest.fixture
def app_url(database_url: str) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(database_url=database_url, public_url=url, enable_scheduler=False, **TEST_SETTINGS)
    with running_demo_site(create_app(settings), port=port, lifespan=True):
        yield url


async def test_a_deleted_feed_is_unsubscribed_from_the_demo_hub_which_then_stops(
    db: Database, database_url: str, app_url: str
) -> None:
    demo_clock = FakeClock(START)
    app = create_demo_app(SITE, now=demo_clock.now)
    with running_demo_site(app) as urls:
        base, hub = urls[0], app.state.hub  # type: ignore[attr-defined]
        topic = f"{base}/feeds/world.rss"
        _, feed_id = await _feed_with_subscription(db, f"{base}/hub", state="pending", attempts=0, topic=topic)
        renew = renewal(db, app_url, **PATIENT)
        assert (await renew(ctx(datetime.now(UTC))))["requested"] == 1
        store = WebSubStore(db)

        async def verified() -> bool:
            sub = await store.for_feed(feed_id)
            return sub is not None and sub.state == SubscriptionState.VERIFIED

        await wait_for(verified)
        assert len(hub.subscribers) == 1

        assert await FeedStore(db).delete(feed_id, now=datetime.now(UTC))
        assert await store.for_feed(feed_id) is None
        # Until the hub hears of it, its pushes are refused with 410 (the spec's "stop").
        assert await hub.distribute(topic) == 1 and hub.pushes[-1][1] == 410

        [ending] = await store.unsubscriptions()
        assert ending.reason == "feed deleted" and ending.state == UnsubscribeState.PENDING
        counts = await renew(ctx(datetime.now(UTC)))
        assert counts["unsubscribe_requested"] == 1 and counts["requested"] == 0

        async def confirmed() -> bool:
            [current] = await store.unsubscriptions()
            return current.state == UnsubscribeState.CONFIRMED

        await wait_for(confirmed)
        assert hub.subscribers == {}  # the hub verified our unsubscribe and dropped us
        pushes = len(hub.pushes)
        demo_clock.advance(SITE.article_interval_s)  # a new article: nobody is subscribed any more
        assert await hub.watch_once() == 0 and len(hub.pushes) == pushes
        with pytest.raises(SkipRun):  # nothing left to ask
            await renew(ctx(datetime.now(UTC)))


async def test_disabling_a_feed_by_hand_or_by_a_410_asks_the_hub_to_stop(
    db: Database, silent_hub: tuple[str, SilentHub]
) -> None:
    hub_url, hub = silent_hub
    org_id, by_hand = await _feed_with_subscription(db, hub_url)
    org2 = await OrgStore(db).create("other", now=START)
    gone, _ = await FeedStore(db).add(org2.id, "http://127.0.0.1:9/gone.rss", now=START)
    store = WebSubStore(db)
    new = NewSubscription(org2.id, gone.id, hub_url, "http://127.0.0.1:9/gone.rss", "token-of-gone", SECRET)
    await store.record_discovered([new], now=START)
    sub = await store.for_feed(gone.id)
    assert sub is not None
    await store.update(sub.id, {"state": "verified"}, now=START)

    await FeedStore(db).set_active(by_hand, False, reason="not wanted", now=START)
    assert await store.for_feed(by_hand) is None
    # A 410 disables a feed in the fetch pass; websub-renew picks that up on its next run.
    async with db.write() as conn:
        await conn.execute(
            feeds_t.update().where(feeds_t.c.id == gone.id).values(active=False, disabled_reason="HTTP 410 Gone")
        )
    counts = await renewal(db, PUBLIC)(ctx(START))
    assert counts["unsubscribe_requested"] == 2 and await store.for_feed(gone.id) is None
    reasons = sorted(u.reason for u in await store.unsubscriptions())
    assert reasons == ["feed disabled: HTTP 410 Gone", "feed disabled: not wanted"]
    forms = sorted(hub.forms, key=lambda f: f["hub.topic"])
    assert [f["hub.mode"] for f in forms] == ["unsubscribe", "unsubscribe"]
    assert forms[0]["hub.topic"] == TOPIC and forms[0]["hub.callback"] == f"{PUBLIC}/websub/callback/{TOKEN}"
    assert "hub.secret" not in forms[0]
    # Enabling the feed again starts afresh: its next fetch finds the hub and a new subscription is asked for.
    await FeedStore(db).set_active(by_hand, True, now=START)
    fresh = NewSubscription(org_id, by_hand, hub_url, TOPIC, "a-new-token", "a-new-secret")
    assert await store.record_discovered([fresh], now=START) == 1


async def test_removing_an_organisation_or_changing_the_hub_ends_the_old_subscription(
    db: Database, silent_hub: tuple[str, SilentHub]
) -> None:
    hub_url, _ = silent_hub
    org_id, feed_id = await _feed_with_subscription(db, hub_url)
    store = WebSubStore(db)
    moved = NewSubscription(org_id, feed_id, "http://127.0.0.1:9/new-hub", TOPIC, "new-token", "new-secret")
    assert await store.record_discovered([moved], now=START) == 1
    sub = await store.for_feed(feed_id)
    assert sub is not None and sub.hub.endswith("/new-hub") and sub.state == SubscriptionState.PENDING
    [old] = await store.unsubscriptions()
    assert (old.reason, old.hub) == ("hub changed", hub_url)

    await store.update(sub.id, {"state": "verified"}, now=START)
    assert await OrgStore(db).delete(org_id, now=START)
    ending = await store.unsubscriptions()
    assert [u.reason for u in ending] == ["hub changed", "organisation removed"]
    assert await store.list() == []


async def test_a_subscription_the_hub_cannot_hold_is_dropped_without_asking(
    db: Database, silent_hub: tuple[str, SilentHub]
) -> None:
    hub_url, hub = silent_hub
    _, never_asked = await _feed_with_subscription(db, hub_url, state="pending", attempts=0)
    _, denied = await _feed_with_subscription(db, hub_url, state="denied", org="denied", token="t2")
    store = WebSubStore(db)
    assert await FeedStore(db).delete(never_asked, now=START)
    assert await FeedStore(db).delete(denied, now=START)
    assert await store.unsubscriptions() == [] and await store.list() == []
    with pytest.raises(SkipRun):
        await renewal(db, PUBLIC)(ctx(START))
    assert hub.forms == []


async def test_only_an_unsubscribe_we_asked_for_is_confirmed_and_ended_subscriptions_get_410(
    db: Database, client: httpx.AsyncClient
) -> None:
    _, feed_id = await _feed_with_subscription(db, "http://127.0.0.1:9/hub")
    store = WebSubStore(db)
    path = f"/websub/callback/{TOKEN}"
    query = {"hub.mode": "unsubscribe", "hub.topic": TOPIC, "hub.challenge": "bye123"}
    # A live subscription: an unsubscribe someone else asked the hub for is refused and recorded.
    assert (await client.get(path, params=query)).status_code == 404
    sub = await store.for_feed(feed_id)
    assert sub is not None and sub.state == SubscriptionState.VERIFIED
    assert "did not ask" in (sub.last_error or "")

    await FeedStore(db).delete(feed_id, now=START)
    signed = {"X-Hub-Signature": signature_header(SECRET, FEED_BODY)}
    assert (await client.post(path, content=FEED_BODY, headers=signed)).status_code == 410
    # Ended, but our request has not gone out yet: nothing to confirm.
    assert (await client.get(path, params=query)).status_code == 404
    [unsub] = await store.unsubscriptions()
    await store.update_unsubscription(unsub.id, {"attempts": 1}, now=START)
    assert (await client.get(path, params={**query, "hub.topic": TOPIC + "x"})).status_code == 404
    assert (await client.get(path, params={**query, "hub.mode": "subscribe"})).status_code == 404
    response = await client.get(path, params=query)
    assert response.status_code == 200 and response.text == "bye123"
    [unsub] = await store.unsubscriptions()
    assert unsub.state == UnsubscribeState.CONFIRMED and unsub.next_attempt_at is None
    assert (await client.get(path, params=query)).status_code == 404  # confirmed once, not twice
    assert (await client.post(path, content=FEED_BODY, headers=signed)).status_code == 410


async def test_a_push_for_a_disabled_feed_gets_410(db: Database, client: httpx.AsyncClient) -> None:
    _, feed_id = await _feed_with_subscription(db, "http://127.0.0.1:9/hub")
    async with db.write() as conn:  # disabled without the store (as by an older node): the push still stops
        await conn.execute(sa.update(feeds_t).where(feeds_t.c.id == feed_id).values(active=False))
    signed = {"X-Hub-Signature": signature_header(SECRET, FEED_BODY)}
    assert (await client.post(f"/websub/callback/{TOKEN}", content=FEED_BODY, headers=signed)).status_code == 410


async def test_a_hub_that_never_confirms_an_unsubscribe_is_given_up_and_forgotten_later(
    db: Database, silent_hub: tuple[str, SilentHub]
) -> None:
    hub_url, hub = silent_hub
    _, feed_id = await _feed_with_subscription(db, hub_url)
    await FeedStore(db).delete(feed_id, now=START)
    renew = renewal(db, PUBLIC, websub_verify_attempts=2, websub_retry_seconds=60)
    clock = FakeClock(START)
    for _ in range(2):
        assert (await renew(ctx(clock.now())))["unsubscribe_requested"] == 1
        clock.advance(hours=1)
    result = await renew(ctx(clock.now()))
    assert result["unsubscribe_given_up"] == 1 and len(hub.forms) == 2
    store = WebSubStore(db)
    [unsub] = await store.unsubscriptions()
    assert unsub.state == UnsubscribeState.GIVEN_UP and "no confirmation after 2" in (unsub.last_error or "")
    clock.advance(days=31)
    with pytest.raises(SkipRun):
        await renew(ctx(clock.now()))
    assert await store.unsubscriptions() == []


async def test_feeds_websub_lists_the_subscriptions_being_ended(api: ApiEnv) -> None:
    db = api.services.db
    feed, _ = await FeedStore(db).add(api.org_id, TOPIC, now=START)
    store = WebSubStore(db)
    await store.record_discovered(
        [NewSubscription(api.org_id, feed.id, PUBLIC + "/hub", TOPIC, TOKEN, SECRET)], now=START
    )
    sub = await store.for_feed(feed.id)
    assert sub is not None
    await store.update(sub.id, {"state": "verified"}, now=START)
    await api.services.content.feeds.delete(feed.id, SYSTEM)
    shown = " ".join(ok(await cli(api, "feeds", "websub")).split())
    assert "ended subscriptions (the hub is asked to stop" in shown  # the table itself wraps with the width
    data = json.loads(ok(await cli(api, "feeds", "websub", "--json")))
    assert data["subscriptions"] == [] and data["unsubscriptions"][0]["reason"] == "feed deleted"
    assert SECRET not in json.dumps(data) and TOKEN not in json.dumps(data)
