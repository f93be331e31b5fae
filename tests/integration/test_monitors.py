"""Monitors on both databases: matching on arrival (a real crawl of the demo site), once only, catch-up after
a failed hook, signed webhooks with retries, the SSRF guard, cool-downs, digests and spikes."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from mediabeat.clock import FakeClock
from mediabeat.crawler.http import ClientConfig, SafeClient
from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.monitor_matches import MatchStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.tables import monitor_scanned
from mediabeat.demo import content as demo_content
from mediabeat.demo.site import create_demo_app, running_demo_site
from mediabeat.domain.content import Actor
from mediabeat.domain.monitors import (
    BadMonitorQuery,
    BadWebhookUrl,
    DeliveryKind,
    DeliveryStatus,
    Digest,
    MonitorExists,
    NewMonitor,
)
from mediabeat.monitors.engine import MonitorEngine, build_monitor_engine
from mediabeat.services import ContentServices, build_content_services
from mediabeat.settings import Settings
from tests.crawler_helpers import TEST_SETTINGS, ctx, handlers
from tests.monitor_helpers import Receiver, article, webhook_receiver

START = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
ACTOR = Actor(name="tests")


@dataclass
class Env:
    db: Database
    clock: FakeClock
    settings: Settings
    content: ContentServices
    engine: MonitorEngine
    org_id: int
    other_org_id: int

    async def store(self, *titles: str, org_id: int | None = None, first: int = 0) -> list[int]:
        batch = [article(org_id or self.org_id, first + i, t) for i, t in enumerate(titles)]
        return await ArticleStore(self.db).save_many(batch, now=self.clock.now())

    async def monitor(self, name: str, query: str, **options: Any) -> Any:
        return await self.content.monitors.create(self.org_id, NewMonitor(name=name, query=query, **options), ACTOR)


def engine_for(db: Database, clock: FakeClock, settings: Settings) -> MonitorEngine:
    config = ClientConfig.from_settings(settings)
    return build_monitor_engine(db, clock, client_factory=lambda: SafeClient(config), mail=None, public_url=None)


@pytest.fixture
async def env(db: Database) -> AsyncIterator[Env]:
    clock = FakeClock(START)
    settings = Settings(database_url=db.url, **TEST_SETTINGS)
    orgs = OrgStore(db)
    org, other = await orgs.create("newsroom", now=START), await orgs.create("elsewhere", now=START)
    engine = engine_for(db, clock, settings)
    yield Env(db, clock, settings, build_content_services(settings, db, clock), engine, org.id, other.id)
    await engine.drain()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from webhook_receiver()


async def test_a_monitor_made_before_the_crawl_matches_what_the_crawl_stores(env: Env) -> None:
    created = await env.monitor("harbour", "harbour OR council")
    config = demo_content.DemoSiteConfig(article_interval_s=60, feed_size=12)
    with running_demo_site(create_demo_app(config, now=env.clock.now)) as urls:
        feeds = [(f"{urls[0].rstrip('/')}/feeds/{s}.rss", None) for s in ("world", "business", "politics")]
        await FeedStore(env.db).add_many(env.org_id, feeds, now=START)
        fetch, crawl = handlers(env.db, env.clock)
        crawl.on_stored = (env.engine.matcher.on_stored,)
        try:
            assert (await fetch(ctx(START)))["jobs_created"] > 0
            assert (await crawl(ctx(START)))["succeeded"] > 0
        finally:
            await crawl.aclose()
    service = env.content.monitors
    matches = await service.matches(created.monitor.id, limit=500)
    assert matches
    articles = await ArticleStore(env.db).list(org_id=env.org_id, limit=500)
    words = {a.id: f"{a.title} {a.summary or ''} {a.text or ''}".lower() for a in articles}
    expected = {i for i, text in words.items() if "harbour" in text.split() or "council" in text.split()}
    matched = {m.article_id for m in matches}
    assert matched <= set(words)
    assert {i for i in matched if ("harbour" in words[i] or "council" in words[i])} == matched
    assert len(matched) >= len(expected) // 2  # tokenising differs a little from str.split (punctuation)
    # Matching again records nothing new: a match is recorded once.
    assert await env.engine.matcher.catch_up(env.org_id) == 0
    assert await service.match_count(created.monitor.id) == len(matches)


async def test_articles_stored_before_a_monitor_existed_are_not_its_matches(env: Env) -> None:
    await env.store("Harbour news from yesterday")
    created = await env.monitor("harbour", "harbour")
    await env.store("Harbour news today", first=1)
    await env.engine.matcher.catch_up(env.org_id)
    titles = [m.title for m in await env.content.monitors.matches(created.monitor.id)]
    assert titles == ["Harbour news today"]


async def test_once_only_and_other_organisations_articles_never_match(env: Env) -> None:
    created = await env.monitor("mayor", '"the mayor" AND NOT sport')
    await env.store("The mayor resigns", "Sport: the mayor runs a marathon", "A mayor elsewhere")
    await env.store("The mayor speaks", org_id=env.other_org_id, first=10)
    matcher = env.engine.matcher
    assert await matcher.catch_up(env.org_id) == 1
    assert await matcher.catch_up(env.other_org_id) == 0
    assert await matcher.catch_up(env.org_id) == 0
    assert [m.title for m in await env.content.monitors.matches(created.monitor.id)] == ["The mayor resigns"]


class FailingOnce(MatchStore):
    failures = 1

    async def record_scan(self, *args: Any, **kwargs: Any) -> int:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the database went away")
        return await super().record_scan(*args, **kwargs)


async def test_a_batch_whose_hook_failed_is_matched_by_the_next_batch_or_the_task(env: Env) -> None:
    created = await env.monitor("storm", "storm")
    env.engine.matcher.matches = FailingOnce(env.db)
    batch = [article(env.org_id, 0, "Storm hits the coast"), article(env.org_id, 1, "Calm weather")]
    first = await ArticleStore(env.db).save_many(batch, now=env.clock.now())
    with pytest.raises(RuntimeError):
        await env.engine.matcher.on_stored(list(zip(first, batch, strict=True)))
    # The next batch's hook matches its own article and catches up with the failed one.
    later = article(env.org_id, 5, "Calm seas")
    [later_id] = await ArticleStore(env.db).save_many([later], now=env.clock.now())
    await env.engine.matcher.on_stored([(later_id, later)])
    await env.store("Another storm", first=6)
    titles = sorted(m.title or "" for m in await env.content.monitors.matches(created.monitor.id))
    assert titles == ["Storm hits the coast"]
    # A process that died before its hook ran: the task's catch-up finds its articles.
    await env.store("Storm warning lifted", first=9)
    assert await env.engine.matcher.catch_up_all() == 2
    titles = sorted(m.title or "" for m in await env.content.monitors.matches(created.monitor.id))
    assert titles == ["Another storm", "Storm hits the coast", "Storm warning lifted"]
    # Once settled, the watermark moves past everything matched and the scan marks are dropped.
    env.clock.advance(120)
    await env.engine.matcher.catch_up(env.org_id)
    store = MatchStore(env.db)
    newest = max(a.id for a in await ArticleStore(env.db).list(org_id=env.org_id))
    assert await store.cursor(env.org_id) == newest
    async with env.db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(monitor_scanned))).scalar_one() == 0


async def test_a_webhook_is_signed_retried_after_a_500_and_recorded(env: Env, receiver: Receiver) -> None:
    receiver.statuses = [500]
    created = await env.monitor("storm", "storm", webhook_url=receiver.url())
    assert created.webhook_secret
    await env.store("Storm hits the coast")
    await env.engine.matcher.catch_up(env.org_id)
    await env.engine.drain()
    assert len(receiver.received) == 1
    [delivery] = await env.content.monitors.deliveries_of(created.monitor.id)
    assert (delivery.status, delivery.attempts, delivery.last_error) == (DeliveryStatus.PENDING, 1, "HTTP 500")
    assert delivery.next_attempt_at == env.clock.now() + timedelta(seconds=30)
    env.clock.advance(31)
    assert await env.engine.deliveries.send_due(env.clock.now()) == (1, 0)
    [delivery] = await env.content.monitors.deliveries_of(created.monitor.id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)
    sent = receiver.received[-1]
    expected = "sha256=" + hmac.new(created.webhook_secret.encode(), sent.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(sent.headers["x-mediabeat-signature"], expected)
    body = json.loads(sent.body)
    assert body["kind"] == "matches" and body["total"] == 1
    assert body["monitor"]["name"] == "storm" and body["matches"][0]["title"] == "Storm hits the coast"


async def test_a_webhook_to_a_private_address_is_refused_before_any_connection(env: Env, receiver: Receiver) -> None:
    strict = Settings(database_url=env.db.url, **{**TEST_SETTINGS, "crawler_allow_private_networks": False})
    guarded = build_content_services(strict, env.db, env.clock).monitors
    for url in (receiver.url(), "http://10.1.2.3/hook", "http://169.254.169.254/latest", "ftp://example.test/x"):
        with pytest.raises(BadWebhookUrl) as refused:
            await guarded.create(env.org_id, NewMonitor(name="x", query="storm", webhook_url=url), ACTOR)
        assert str(refused.value).count("refused") <= 1, str(refused.value)
    # The guard's sentence inside the service's: "refused" said once.
    with pytest.raises(BadWebhookUrl) as private:
        await guarded.create(env.org_id, NewMonitor(name="x", query="storm", webhook_url="http://10.1.2.3/hook"), ACTOR)
    assert str(private.value) == (
        "the webhook URL is refused: 10.1.2.3 is an address the crawler never fetches (private network); "
        "list its range in MEDIABEAT_CRAWLER_ALLOWED_NETWORKS to allow it"
    )
    # Saved while loopback was allowed, sent by a process that does not allow it: refused, not retried.
    created = await env.monitor("storm", "storm", webhook_url=receiver.url())
    strict_engine = engine_for(env.db, env.clock, strict)
    await env.store("Storm hits the coast")
    await strict_engine.matcher.catch_up(env.org_id)
    await strict_engine.drain()
    [delivery] = await env.content.monitors.deliveries_of(created.monitor.id)
    assert delivery.status == DeliveryStatus.FAILED and "an address the crawler never fetches" in (
        delivery.last_error or ""
    )
    assert receiver.accepted == 0


async def test_a_burst_within_the_cool_down_is_one_message(env: Env, receiver: Receiver) -> None:
    created = await env.monitor("storm", "storm", webhook_url=receiver.url(), cooldown_s=600)
    await env.store("Storm one")
    await env.engine.matcher.catch_up(env.org_id)
    await env.engine.drain()
    for n in range(1, 6):
        env.clock.advance(30)
        await env.store(f"Storm {n + 1}", first=n)
        await env.engine.matcher.catch_up(env.org_id)
        await env.engine.drain()
    assert len(receiver.received) == 1
    env.clock.advance(600)
    await env.engine.deliveries.plan(env.clock.now())
    await env.engine.deliveries.send_due(env.clock.now())
    assert len(receiver.received) == 2
    second = json.loads(receiver.received[1].body)
    assert second["total"] == 5 and len(second["matches"]) == 5
    assert await env.engine.deliveries.plan(env.clock.now()) == 0
    assert [m.delivered_at is not None for m in await env.content.monitors.matches(created.monitor.id)] == [True] * 6


async def test_a_huge_backlog_of_matches_is_one_bounded_message(env: Env, receiver: Receiver) -> None:
    """Thousands of undelivered matches for one monitor: one message listing the newest 100, with the total."""
    from mediabeat.db.tables import articles, monitor_matches

    created = await env.monitor("storm", "storm", webhook_url=receiver.url(), cooldown_s=0)
    count = 2_500
    async with env.db.write() as conn:
        rows = [
            {"org_id": env.org_id, "url": f"https://x.test/{n}", "url_hash": f"bulk-{n}", "title": f"Storm {n}"}
            | {"fetched_at": START, "created_at": START}
            for n in range(count)
        ]
        ids = [r[0] for r in await conn.execute(sa.insert(articles).returning(articles.c.id), rows)]
        await conn.execute(
            sa.insert(monitor_matches),
            [
                {"monitor_id": created.monitor.id, "org_id": env.org_id, "article_id": i, "matched_at": START}
                for i in ids
            ],
        )
    env.clock.advance(1)
    assert await env.engine.deliveries.plan(env.clock.now()) == 1
    await env.engine.deliveries.send_due(env.clock.now())
    [message] = receiver.received
    body = json.loads(message.body)
    assert body["total"] == count and len(body["matches"]) == 100
    assert body["matches"][0]["title"] == f"Storm {count - 1}"  # the newest first
    assert await env.engine.deliveries.plan(env.clock.now()) == 0  # all of them handed over: nothing pending


async def test_an_hourly_digest_goes_out_once_the_hour_is_over(env: Env, receiver: Receiver) -> None:
    created = await env.monitor("storm", "storm", webhook_url=receiver.url(), digest=Digest.HOURLY)
    await env.store("Storm one", "Storm two")
    await env.engine.matcher.catch_up(env.org_id)
    await env.engine.drain()
    assert receiver.received == []
    env.clock.set(START.replace(minute=59))
    assert await env.engine.deliveries.plan(env.clock.now()) == 0
    env.clock.set(START.replace(hour=11, minute=0, second=30))
    assert await env.engine.deliveries.plan(env.clock.now()) == 1
    await env.engine.deliveries.send_due(env.clock.now())
    [received] = receiver.received
    body = json.loads(received.body)
    assert body["kind"] == DeliveryKind.DIGEST.value and body["total"] == 2
    [delivery] = await env.content.monitors.deliveries_of(created.monitor.id)
    assert delivery.status == DeliveryStatus.SENT


async def test_a_spike_above_the_monitors_own_baseline_alerts_once_an_hour(env: Env, receiver: Receiver) -> None:
    created = await env.monitor("storm", "storm", webhook_url=receiver.url(), spike_alerts=True)
    monitor_id = created.monitor.id
    ids = await env.store(*[f"Storm {n}" for n in range(40)])
    store = MatchStore(env.db)
    # A quiet baseline: one match an hour over the last two days...
    for hour, article_id in enumerate(ids[: 48 if len(ids) >= 48 else 30]):
        await store.record_scan(env.org_id, [], [(monitor_id, article_id)], now=START - timedelta(hours=hour + 1))
    env.clock.set(START.replace(minute=40))
    assert await env.engine.deliveries.check_spikes(env.clock.now()) == 0
    # ...then ten in this hour.
    await store.record_scan(env.org_id, [], [(monitor_id, a) for a in ids[30:40]], now=START)
    assert await env.engine.deliveries.check_spikes(env.clock.now()) == 1
    assert await env.engine.deliveries.check_spikes(env.clock.now()) == 0  # once an hour
    spikes = [d for d in await env.content.monitors.deliveries_of(monitor_id) if d.kind == DeliveryKind.SPIKE]
    assert len(spikes) == 1 and spikes[0].payload["count"] == 10 and spikes[0].payload["threshold"] == 5.0


async def test_bad_queries_names_and_addresses_are_refused_with_a_message(env: Env) -> None:
    cases = (
        ('"harbour', "unbalanced quote at column 1"),
        ("(harbour OR", "both sides at column 10"),
        ("harbour)", "unbalanced parenthesis"),
        ("", "no words"),
        ("the and", "very common words"),
        (" OR ".join(f"w{n}" for n in range(100)), "more than 64 terms"),
        ("harbour " * 200, "the limit is 1000"),
    )
    for query, hint in cases:
        with pytest.raises(BadMonitorQuery, match=hint):
            await env.monitor("m", query)
    await env.monitor("m", "harbour")
    with pytest.raises(MonitorExists):
        await env.monitor("m", "council")
    with pytest.raises(Exception, match="email"):
        await env.monitor("n", "harbour", email="not an address")
