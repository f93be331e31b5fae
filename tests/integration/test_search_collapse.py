"""Search results collapsed to one per story: the API's `collapse=true`, `articles search --collapse` and the
dashboard's articles search (collapsed by default), paging by stories (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
from collections import Counter

from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.search.tokens import tokenize
from tests.integration.api_fixtures import ApiEnv
from tests.integration.test_content_services import cli, ok
from tests.integration.test_dashboard_pages import signed_in
from tests.story_helpers import copies_of, new_article


async def seed(api: ApiEnv) -> tuple[list[int], list[int], str]:
    """Reprints of wire story 0 (each from a feed of its own) and articles of their own, clustered as
    crawl-queue's hook clusters them. Returns (the copies' ids, the others' ids, a word they all have)."""
    services = api.services
    copies = copies_of(0)
    now = services.clock.now()
    feeds = await FeedStore(services.db).add_many(
        api.org_id, [(f"http://127.0.0.1:8001/feeds/{s}.rss", s) for s, _ in copies], now=now
    )
    feed_ids = {f.url.rsplit("/", 1)[1].removesuffix(".rss"): f.id for f, _ in feeds}
    reprints = [new_article(api.org_id, s, n, feed_id=feed_ids[s]) for s, n in copies]
    taken = set(copies)
    others = [new_article(api.org_id, "world", n) for n in range(40) if ("world", n) not in taken][:6]
    ids = await ArticleStore(services.db).save_many([*reprints, *others], now=now)
    await services.content.stories.clusterer.on_stored(list(zip(ids, [*reprints, *others], strict=True)))
    everyone = [set(tokenize(f"{a.title} {a.text}")) for a in [*reprints, *others]]
    common = Counter(w for words in everyone for w in words if len(w) >= 5 and w.isalpha())
    word = next(w for w, _ in common.most_common() if all(w in words for words in everyone))
    return ids[: len(reprints)], ids[len(reprints) :], word


async def test_api_collapse_gives_one_item_per_story_and_pages_by_stories(api: ApiEnv) -> None:
    copies, others, word = await seed(api)
    assert len(copies) >= 2
    async with api.member() as client:
        every = (await client.get("/api/v1/articles", params={"q": word, "limit": 100})).json()["items"]
        assert sorted(i["id"] for i in every) == sorted(copies + others)
        collapsed = (await client.get("/api/v1/articles", params={"q": word, "collapse": "true"})).json()
        items = collapsed["items"]
        # The story's best-ranked copy stands for it; everything else keeps its place in the ranking.
        best = next(i["id"] for i in every if i["id"] in copies)
        assert [i["id"] for i in items] == [i["id"] for i in every if i["id"] not in copies or i["id"] == best]
        story = next(i for i in items if i["id"] == best)
        assert story["cluster_size"] == len(copies) and story["cluster_id"] is not None
        assert all(i["cluster_size"] == 1 for i in items if i["id"] != best)
        # Pages of two count stories: no copy shows up on a later page, nothing is skipped.
        paged, cursor = [], None
        while True:
            params = {"q": word, "collapse": "true", "limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/v1/articles", params=params)).json()
            paged += [i["id"] for i in page["items"]]
            if (cursor := page["next_cursor"]) is None:
                break
        assert paged == [i["id"] for i in items]


async def test_cli_search_collapse(api: ApiEnv) -> None:
    copies, others, word = await seed(api)
    found = json.loads(ok(await cli(api, "articles", "search", word, "--org", "api-org", "--collapse", "--json")))
    assert len(found) == len(others) + 1
    [story] = [f for f in found if f["id"] in copies]
    assert story["cluster_size"] == len(copies) and story["cluster_id"] is not None
    every = json.loads(ok(await cli(api, "articles", "search", word, "--org", "api-org", "--json", "--limit", "50")))
    assert len(every) == len(copies) + len(others)
    text = ok(await cli(api, "articles", "search", word, "--org", "api-org", "--collapse"))
    assert f"and {len(copies) - 1} more copies of this story: stories show {story['cluster_id']}" in text


async def test_the_dashboard_search_shows_one_copy_and_and_n_more_outlets(api: ApiEnv) -> None:
    copies, others, word = await seed(api)
    story = (await api.services.content.stories.list(org_id=api.org_id))[0]
    async with signed_in(api) as client:
        page = (await client.get("/app/articles", params={"q": word})).text
        shown = {int(i) for i in re.findall(r'data-article-id="(\d+)"', page)}
        assert len(shown & set(copies)) == 1 and set(others) <= shown
        assert f'href="/app/stories/{story.id}" data-field="more-copies">and {len(copies) - 1} more outlets' in page
        every = (await client.get("/app/articles", params={"q": word, "copies": "1"})).text
        assert {int(i) for i in re.findall(r'data-article-id="(\d+)"', every)} == set(copies + others)
        assert "more-copies" not in every and 'data-action="collapse-copies"' in every
