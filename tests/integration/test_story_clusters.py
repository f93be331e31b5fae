"""Story clusters on a real database (SQLite and PostgreSQL): copies group, unrelated articles do not,
concurrent workers agree, organisations stay apart, and a rebuild clusters existing articles."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from mediabeat.clock import FakeClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore, NewArticle
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.stores.stories import StoryStore
from mediabeat.stories.clusterer import StoryClusterer
from tests.story_helpers import demo_articles, new_article

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
# Crawling the demo site in these tests: timeouts a busy machine does not reach (a page is never retried for speed).
PATIENT = {"crawler_read_timeout": 30.0, "crawler_total_timeout": 60.0}


async def store(db: Database, articles: list[NewArticle]) -> list[int]:
    return await ArticleStore(db).save_many(articles, now=NOW)


async def test_copies_cluster_and_unrelated_articles_do_not(db: Database) -> None:
    org = await OrgStore(db).create("newsroom", now=NOW)
    items = demo_articles(range(40))
    ids = await store(db, [new_article(org.id, s, n) for s, n, _ in items])
    clusterer = StoryClusterer(store=StoryStore(db), clock=FakeClock(NOW))
    clusters = await clusterer.cluster(
        org.id,
        [(i, None, None, a.text) for i, a in zip(ids, [new_article(org.id, s, n) for s, n, _ in items], strict=True)],
    )
    by_story: dict[int, set[int]] = {}
    for (_, _, story), cluster in zip(items, clusters, strict=True):
        if story is not None:
            by_story.setdefault(story, set()).add(cluster)
    assert by_story and all(len(c) == 1 for c in by_story.values())  # every story's copies: one cluster
    story_clusters = {next(iter(c)) for c in by_story.values()}
    assert len(story_clusters) == len(by_story)  # different stories: different clusters
    originals = [c for (_, _, story), c in zip(items, clusters, strict=True) if story is None]
    assert len(set(originals)) == len(originals)  # articles of their own: a cluster each
    assert not set(originals) & story_clusters


async def test_two_workers_storing_copies_at_once_end_in_one_cluster(db: Database) -> None:
    org = await OrgStore(db).create("newsroom", now=NOW)
    copies = [(s, n) for s, n, story in demo_articles(range(8)) if story == 0]
    assert len(copies) >= 2
    ids = await store(db, [new_article(org.id, s, n) for s, n in copies])
    texts = [new_article(org.id, s, n).text for s, n in copies]
    other = Database(db.url)  # a second worker: its own engine and connections
    try:
        workers = [
            StoryClusterer(store=StoryStore(db), clock=FakeClock(NOW)),
            StoryClusterer(store=StoryStore(other), clock=FakeClock(NOW)),
        ]
        results = await asyncio.gather(
            *(
                workers[i % 2].cluster(org.id, [(article_id, None, None, text)])
                for i, (article_id, text) in enumerate(zip(ids, texts, strict=True))
            )
        )
    finally:
        await other.dispose()
    assert len({r[0] for r in results}) == 1
    members = await StoryStore(db).memberships(ids)
    assert {m.cluster_size for m in members.values()} == {len(ids)}


async def test_organisations_never_share_a_cluster(db: Database) -> None:
    orgs = OrgStore(db)
    first, second = await orgs.create("one", now=NOW), await orgs.create("two", now=NOW)
    copies = [(s, n) for s, n, story in demo_articles(range(8)) if story == 1]
    clusterer = StoryClusterer(store=StoryStore(db), clock=FakeClock(NOW))
    seen = []
    for org in (first, second):
        articles = [new_article(org.id, s, n) for s, n in copies]
        ids = await store(db, articles)
        seen.append(
            set(await clusterer.cluster(org.id, [(i, None, None, a.text) for i, a in zip(ids, articles, strict=True)]))
        )
    assert len(seen[0]) == 1 and len(seen[1]) == 1 and seen[0] != seen[1]
    listed = await StoryStore(db).list(org_id=first.id, limit=10)
    assert [s.id for s in listed] == list(seen[0]) and listed[0].size == len(copies)
    # Deleting an organisation takes its clusters, and only its own.
    assert await orgs.delete(first.id)
    assert await StoryStore(db).list(org_id=first.id, limit=10) == []
    assert await StoryStore(db).get(next(iter(seen[0]))) is None
    assert [s.id for s in await StoryStore(db).list(org_id=None, limit=10)] == list(seen[1])


async def test_story_summary_rebuild_and_restore(db: Database) -> None:
    org = await OrgStore(db).create("newsroom", now=NOW)
    items = demo_articles(range(12))
    articles = [new_article(org.id, s, n, host=f"127.0.0.{1 + k % 3}") for k, (s, n, _) in enumerate(items)]
    await store(db, articles)
    stories = StoryStore(db)
    clusterer = StoryClusterer(store=stories, clock=FakeClock(NOW))
    result = await clusterer.rebuild(org.id)
    assert result.articles == len(items)
    listed = await stories.list(org_id=org.id, limit=50)
    expected = {}
    for s, n, story in items:
        if story is not None:
            expected.setdefault(story, []).append((s, n))
    assert sorted(s.size for s in listed) == sorted(len(v) for v in expected.values() if len(v) >= 2)
    top = listed[0]
    detail = await stories.get(top.id)
    assert detail is not None and detail.story == top and len(detail.members) == top.size
    assert top.title == detail.members[0].title and top.sites >= 1 and top.first_seen <= top.last_seen
    # A rebuild again gives the same grouping; clustering a stored article again keeps it with its copies.
    again = await clusterer.rebuild(org.id)
    assert again.clusters == result.clusters
    member = detail.members[0]
    text = next(a.text for a in articles if a.url == member.url)
    relisted = await stories.list(org_id=org.id, limit=1)
    [cluster] = await clusterer.cluster(org.id, [(member.id, None, None, text)])
    assert cluster == relisted[0].id
    assert await stories.get(10**9) is None


async def test_crawl_queue_clusters_the_demo_sites_reprints_as_it_stores_them(db: Database) -> None:
    """The wired crawler (hourly-rss-fetch, then crawl-queue with its on_stored hooks) on the demo site."""
    import httpx

    from mediabeat.crawler.opml import parse_opml
    from mediabeat.crawler.urls import canonicalize
    from mediabeat.db.stores.feeds import FeedStore
    from mediabeat.demo.content import DemoSiteConfig, syndicated_story
    from mediabeat.demo.site import create_demo_app, running_demo_site
    from tests.crawler_helpers import ctx, handlers

    site = DemoSiteConfig(feed_size=6, article_interval_s=600)
    clock = FakeClock(datetime(2026, 1, 3, 9, 0, 30, tzinfo=UTC))
    org = await OrgStore(db).create("newsroom", now=clock.now())
    with running_demo_site(create_demo_app(site, now=clock.now)) as (base,):
        feeds = parse_opml(httpx.get(f"{base}/feeds.opml", timeout=10).content)
        await FeedStore(db).add_many(org.id, [(canonicalize(f.url), f.title) for f in feeds], now=clock.now())
        fetch, crawl = handlers(db, clock, crawl_batch=100, **PATIENT)
        try:
            await fetch(ctx(clock.now()))
            result = await crawl(ctx(clock.now()))
        finally:
            await crawl.aclose()
    assert result["succeeded"] == 72 and result["failed"] == 0
    articles = await ArticleStore(db).list(org_id=org.id, limit=100)
    members = await StoryStore(db).memberships([a.id for a in articles])
    assert len(members) == len(articles)  # every stored article was clustered by the hook
    expected: dict[int, set[int]] = {}
    for article in articles:
        section, page = article.url.split("/")[-2:]
        story = syndicated_story(site, section, int(page.split("-")[0]))
        if story is not None:
            expected.setdefault(story, set()).add(members[article.id].cluster_id)
    assert any(len(v) for v in expected.values())
    assert all(len(clusters) == 1 for clusters in expected.values())
    listed = await StoryStore(db).list(org_id=org.id, limit=100)
    assert listed, "the demo site's reprints make at least one story with copies"
    assert sorted(s.size for s in listed) == sorted(
        n
        for n in (sum(1 for a in articles if members[a.id].cluster_id == next(iter(c))) for c in expected.values())
        if n > 1
    )


async def test_other_hosts_are_other_outlets_and_their_reprints_join_the_story(db: Database) -> None:
    """127.0.0.2 is another publisher: its own articles, its own edited reprints of the same wire stories."""
    import httpx

    from mediabeat.crawler.opml import parse_opml
    from mediabeat.crawler.urls import canonicalize
    from mediabeat.db.stores.feeds import FeedStore
    from mediabeat.demo.content import DemoSiteConfig, syndicated_story
    from mediabeat.demo.site import create_demo_app, running_demo_site
    from tests.crawler_helpers import ctx, handlers

    site = DemoSiteConfig(feed_size=6, article_interval_s=600)
    clock = FakeClock(datetime(2026, 1, 3, 9, 0, 30, tzinfo=UTC))
    org = await OrgStore(db).create("newsroom", now=clock.now())
    with running_demo_site(create_demo_app(site, now=clock.now), ["127.0.0.1", "127.0.0.2"]) as (first, second):
        pages = [httpx.get(f"{base}/world/", timeout=10).text for base in (first, second)]
        assert "The Daily Loopback" in pages[0] and "The Loopback Herald" in pages[1]
        feeds = [f for base in (first, second) for f in parse_opml(httpx.get(f"{base}/feeds.opml", timeout=10).content)]
        await FeedStore(db).add_many(org.id, [(canonicalize(f.url), f.title) for f in feeds], now=clock.now())
        fetch, crawl = handlers(db, clock, crawl_batch=200, **PATIENT)
        try:
            await fetch(ctx(clock.now()))
            result = await crawl(ctx(clock.now()))
        finally:
            await crawl.aclose()
    assert result["succeeded"] == 144 and result["failed"] == 0
    articles = await ArticleStore(db).list(org_id=org.id, limit=200)
    members = await StoryStore(db).memberships([a.id for a in articles])
    by_story: dict[int, list[tuple[str, str, int]]] = {}
    for article in articles:
        host = article.url.split("/")[2].split(":")[0]
        section, page = article.url.split("/")[-2:]
        story = syndicated_story(site.for_host(host), section, int(page.split("-")[0]))
        if story is not None:
            by_story.setdefault(story, []).append((host, article.title or "", members[article.id].cluster_id))
    across = [copies for copies in by_story.values() if len({h for h, _, _ in copies}) == 2]
    assert across, "a wire story reprinted by both outlets"
    for copies in by_story.values():
        assert len({c for _, _, c in copies}) == 1  # one story, whichever outlet reprinted it
    assert any(len({t for _, t, _ in copies}) > 1 for copies in across)  # under other headlines
    listed = await StoryStore(db).list(org_id=org.id, limit=200)
    assert any(s.sites == 2 for s in listed)
