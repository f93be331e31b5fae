"""Every stored article is placed in a story cluster exactly once, also when its process dies before its
crawl hook runs (SQLite and PostgreSQL): the "not yet clustered" marker, the sweep, and their races."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from mediabeat.clock import FakeClock
from mediabeat.crawler.http import ClientConfig, SafeClient
from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore, NewArticle
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.stores.stories import StoryStore
from mediabeat.db.tables import article_clusters
from mediabeat.domain.scheduler import Trigger
from mediabeat.monitors.engine import build_monitor_engine
from mediabeat.stories.clusterer import SETTLE, StoryClusterer
from mediabeat.tasks.base import RunContext
from mediabeat.tasks.monitor_deliveries import MonitorDeliveriesTask
from tests.story_helpers import demo_articles, new_article

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def articles_of(org_id: int, numbers: range) -> tuple[list[NewArticle], dict[int, list[int]]]:
    """The demo site's articles of `numbers`, and the positions of each wire story's copies among them."""
    items = demo_articles(numbers)
    copies: dict[int, list[int]] = {}
    for k, (_, _, story) in enumerate(items):
        if story is not None:
            copies.setdefault(story, []).append(k)
    return [new_article(org_id, s, n) for s, n, _ in items], copies


async def clustered_at(db: Database, ids: list[int]) -> dict[int, datetime]:
    query = sa.select(article_clusters.c.article_id, article_clusters.c.clustered_at).where(
        article_clusters.c.article_id.in_(ids)
    )
    async with db.read() as conn:
        return {int(a): t for a, t in await conn.execute(query)}


async def test_articles_stored_by_a_process_that_died_are_placed_by_the_sweep(db: Database) -> None:
    org = await OrgStore(db).create("newsroom", now=NOW)
    articles, copies = articles_of(org.id, range(16))
    ids = await ArticleStore(db).save_many(articles, now=NOW)  # stored; the hook never ran (the process died)
    stories, clock = StoryStore(db), FakeClock(NOW)
    sweeper = StoryClusterer(store=stories, clock=clock)
    assert await stories.count_pending(org.id) == len(ids)
    assert await sweeper.catch_up_all() == 0  # a marker younger than SETTLE: its hook may still come
    clock.advance(SETTLE.total_seconds())
    assert await sweeper.catch_up_all(limit=10) == 10  # bounded per run; the rest next time
    assert await sweeper.catch_up_all() == len(ids) - 10
    assert await stories.count_pending() == 0 and await sweeper.catch_up_all() == 0
    members = await stories.memberships(ids)
    assert set(members) == set(ids)
    for positions in copies.values():  # each story's copies in one cluster, as the hook would have placed them
        assert len({members[ids[k]].cluster_id for k in positions}) == 1


async def test_two_sweeping_processes_and_a_late_hook_place_each_article_once(db: Database) -> None:
    org = await OrgStore(db).create("newsroom", now=NOW)
    articles, copies = articles_of(org.id, range(24))
    ids = await ArticleStore(db).save_many(articles, now=NOW)
    other = Database(db.url)  # a second worker: its own engine and connections
    try:
        first = StoryClusterer(store=StoryStore(db), clock=FakeClock(NOW))
        second = StoryClusterer(store=StoryStore(other), clock=FakeClock(NOW))
        placed = await asyncio.gather(first.catch_up_all(settle=timedelta(0)), second.catch_up_all(settle=timedelta(0)))
    finally:
        await other.dispose()
    assert sum(placed) == len(ids)  # every article placed, none twice
    when = await clustered_at(db, ids)
    # The crawl hook of that batch, late (its process was slow, not dead), leaves them as they are.
    late = StoryClusterer(store=StoryStore(db), clock=FakeClock(NOW + timedelta(hours=1)))
    await late.on_stored(list(zip(ids, articles, strict=True)))
    assert await clustered_at(db, ids) == when
    members = await StoryStore(db).memberships(ids)
    for positions in copies.values():
        assert len({members[ids[k]].cluster_id for k in positions}) == 1


async def test_an_article_stored_afresh_is_placed_afresh_once(db: Database) -> None:
    org = await OrgStore(db).create("newsroom", now=NOW)
    articles, _ = articles_of(org.id, range(4))
    store, stories = ArticleStore(db), StoryStore(db)
    ids = await store.save_many(articles, now=NOW)
    hook = StoryClusterer(store=stories, clock=FakeClock(NOW))
    await hook.on_stored(list(zip(ids, articles, strict=True)))
    assert await stories.count_pending(org.id) == 0
    # The first article's page changed: stored again, marked again, and its hook places it again.
    later = NOW + timedelta(minutes=5)
    [again] = await store.save_many([articles[0]], now=later)
    assert again == ids[0] and await stories.count_pending(org.id) == 1
    await StoryClusterer(store=stories, clock=FakeClock(later)).on_stored([(again, articles[0])])
    when = await clustered_at(db, ids)
    assert when[ids[0]] == later and all(when[i] == NOW for i in ids[1:])
    assert await stories.count_pending(org.id) == 0


async def test_the_monitor_deliveries_task_sweeps_story_clusters(db: Database) -> None:
    org = await OrgStore(db).create("newsroom", now=NOW)
    articles, _ = articles_of(org.id, range(4))
    ids = await ArticleStore(db).save_many(articles, now=NOW)
    clock = FakeClock(NOW + SETTLE)
    config = ClientConfig(user_agent="story-sweep-test", allow_loopback=True)
    engine = build_monitor_engine(db, clock, client_factory=lambda: SafeClient(config), mail=None, public_url=None)
    task = MonitorDeliveriesTask(engine, stories=StoryClusterer(store=StoryStore(db), clock=clock))
    context = RunContext(
        run_id=1,
        task_name="monitor-deliveries",
        trigger=Trigger.MANUAL,
        scheduled_for=clock.now(),
        now=clock.now(),
        params={},
        log=logging.getLogger("mediabeat.test"),
    )
    result = await task(context)
    assert result["stories_caught_up"] == len(ids)
    assert set(await StoryStore(db).memberships(ids)) == set(ids)
    assert (await task(context))["stories_caught_up"] == 0
