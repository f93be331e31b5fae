"""Story clusters as users see them: the API's article and story routes, and the dashboard's pages,
with members confined to their organisation (SQLite and PostgreSQL)."""

from __future__ import annotations

from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.domain.content import SYSTEM
from tests.integration.api_fixtures import ApiEnv, assert_error
from tests.integration.test_dashboard_pages import signed_in
from tests.story_helpers import copies_of, new_article


async def seed(api: ApiEnv) -> tuple[list[int], int]:
    """Reprints of wire story 0 in the API's org, each from a feed of its own, and one lone article; clustered
    as crawl-queue's hook clusters them. Returns (the copies' ids, the lone article's id)."""
    services = api.services
    copies = copies_of(0)
    now = services.clock.now()
    feeds = await FeedStore(services.db).add_many(
        api.org_id, [(f"http://127.0.0.1:8001/feeds/{s}.rss", s) for s, _ in copies], now=now
    )
    feed_ids = {f.url.rsplit("/", 1)[1].removesuffix(".rss"): f.id for f, _ in feeds}
    articles = [new_article(api.org_id, s, n, feed_id=feed_ids[s]) for s, n in copies]
    lone = new_article(api.org_id, "world", 1)
    ids = await ArticleStore(services.db).save_many([*articles, lone], now=now)
    await services.content.stories.clusterer.on_stored(list(zip(ids, [*articles, lone], strict=True)))
    return ids[:-1], ids[-1]


async def test_articles_and_stories_through_the_api(api: ApiEnv) -> None:
    copies, lone = await seed(api)
    async with api.member() as client:
        article = (await client.get(f"/api/v1/articles/{copies[0]}")).json()
        assert article["cluster_size"] == len(copies) and article["cluster_id"] > 0
        alone = (await client.get(f"/api/v1/articles/{lone}")).json()
        assert alone["cluster_size"] == 1 and alone["cluster_id"] != article["cluster_id"]
        listed = (await client.get("/api/v1/stories")).json()["items"]
        assert [s["id"] for s in listed] == [article["cluster_id"]]
        assert listed[0]["size"] == len(copies) and listed[0]["outlets"] == len(copies) and listed[0]["sites"] == 1
        story = (await client.get(f"/api/v1/stories/{article['cluster_id']}")).json()
        assert sorted(m["id"] for m in story["members"]) == sorted(copies)
        assert story["title"] == story["members"][0]["title"]
        assert_error(await client.get("/api/v1/stories/999999"), 404)
        assert_error(await client.get(f"/api/v1/stories?org_id={api.other_org_id}"), 404)
        assert_error(await client.get("/api/v1/stories?limit=0"), 422)
    async with api.client(api.other_token) as other:
        assert_error(await other.get(f"/api/v1/stories/{article['cluster_id']}"), 404)
        assert (await other.get("/api/v1/stories")).json()["items"] == []
    async with api.admin() as admin:
        assert [s["id"] for s in (await admin.get(f"/api/v1/stories?org_id={api.org_id}")).json()["items"]] == [
            article["cluster_id"]
        ]
    async with api.client() as anonymous:
        assert (await anonymous.get("/api/v1/stories")).status_code == 401


async def test_the_dashboard_shows_the_same_story_in_n_outlets(api: ApiEnv) -> None:
    copies, lone = await seed(api)
    story = (await api.services.content.stories.list(org_id=api.org_id))[0]
    async with signed_in(api) as client:
        page = (await client.get(f"/app/articles/{copies[0]}")).text
        assert f'href="/app/stories/{story.id}"' in page and f"The same story in {len(copies)} outlets" in page
        assert "The same story" not in (await client.get(f"/app/articles/{lone}")).text
        listing = (await client.get("/app/articles")).text
        assert listing.count(f'href="/app/stories/{story.id}"') == len(copies)
        stories = (await client.get("/app/stories")).text
        assert f'data-story-id="{story.id}"' in stories and f"{len(copies)} articles" in stories
        detail = await client.get(f"/app/stories/{story.id}")
        assert detail.status_code == 200 and all(f'href="/app/articles/{i}"' in detail.text for i in copies)
        assert (await client.get("/app/stories/999999")).status_code == 404
        assert (await client.get("/app/stories/x")).status_code == 404


async def test_a_rebuild_is_audited(api: ApiEnv) -> None:
    copies, _ = await seed(api)
    [result] = await api.services.content.stories.rebuild(SYSTEM, org_id=api.org_id)
    assert result.articles == len(copies) + 1 and result.clusters == 1
    assert [e.action for e in await api.auth.audit.list(actor="system")][:1] == ["stories.rebuild"]
