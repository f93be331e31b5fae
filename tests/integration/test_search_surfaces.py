"""Search through its doors: the CLI (`articles search`, exports) and the API (`?q=`, /articles/export)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from mediabeat.crawler.urls import url_hash
from mediabeat.db.stores.articles import ArticleStore, NewArticle
from tests.integration.api_fixtures import ApiEnv
from tests.integration.test_content_services import cli, ok


async def add(api: ApiEnv, org_id: int, n: int, title: str, text: str) -> int:
    url = f"https://site{n % 3}.example.org/{org_id}/{n}"
    return await ArticleStore(api.services.db).save(
        NewArticle(
            org_id=org_id,
            feed_id=None,
            url=url,
            url_hash=url_hash(url),
            canonical_url=None,
            title=title,
            author=None,
            published_at=None,
            summary=None,
            text=text,
            language="en",
        ),
        now=api.services.clock.now(),
    )


async def seed(api: ApiEnv) -> dict[str, int]:
    return {
        "title": await add(api, api.org_id, 1, "Harbour council votes", "The vote on the new harbour wall passed."),
        "text": await add(api, api.org_id, 2, "Weather", "Rain in the morning; the harbour stayed closed."),
        "other": await add(api, api.org_id, 3, "Markets", "Shares rose on Monday."),
        "theirs": await add(api, api.other_org_id, 4, "Harbour elsewhere", "Another harbour, another organisation."),
        "formula": await add(api, api.org_id, 5, "=HYPERLINK(1) harbour", "a formula title"),
    }


async def test_api_search_is_ranked_with_snippets_and_pages(api: ApiEnv) -> None:
    ids = await seed(api)
    async with api.member() as client:
        response = await client.get("/api/v1/articles", params={"q": "harbour", "limit": 2})
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["items"][0]["id"] in (ids["title"], ids["formula"])  # the title outweighs the text
        first = page["items"][0]
        start, end = first["highlights"][0]
        assert first["snippet"][start:end].lower() == "harbour" and first["score"] > 0
        rest = (await client.get("/api/v1/articles", params={"q": "harbour", "cursor": page["next_cursor"]})).json()
        seen = [a["id"] for a in page["items"] + rest["items"]]
        assert sorted(seen) == sorted([ids["title"], ids["text"], ids["formula"]]) and rest["next_cursor"] is None


async def test_api_members_search_their_own_org_only(api: ApiEnv) -> None:
    ids = await seed(api)
    async with api.client(api.other_token) as client:
        found = (await client.get("/api/v1/articles", params={"q": "harbour"})).json()["items"]
        assert [a["id"] for a in found] == [ids["theirs"]]
        refused = await client.get("/api/v1/articles", params={"q": "harbour", "org_id": api.org_id})
        assert refused.status_code == 404
        exported = await client.get("/api/v1/articles/export", params={"q": "harbour", "format": "jsonl"})
        assert [json.loads(line)["id"] for line in exported.text.splitlines()] == [ids["theirs"]]
        refused = await client.get("/api/v1/articles/export", params={"q": "harbour", "org_id": api.org_id})
        assert refused.status_code == 404


@pytest.mark.parametrize("query", ['harbour "wall', "(harbour", "harbour OR", "-harbour", "x" * 1001])
async def test_api_bad_queries_are_422_with_the_message(api: ApiEnv, query: str) -> None:
    async with api.member() as client:
        for path in ("/api/v1/articles", "/api/v1/articles/export"):
            response = await client.get(path, params={"q": query})
            assert response.status_code == 422, response.text
            assert response.json()["error"]["code"] == "invalid"
    if len(query) < 100:
        assert "at column" in response.json()["error"]["message"]


async def test_api_export_streams_csv_and_jsonl(api: ApiEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = await seed(api)
    monkeypatch.setattr("mediabeat.services.search.EXPORT_PAGE", 1)  # one row a statement: paging is exercised
    async with api.member() as client:
        response = await client.get("/api/v1/articles/export", params={"q": "harbour OR shares"})
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [int(r["id"]) for r in rows] == sorted([ids["title"], ids["text"], ids["other"], ids["formula"]])[::-1]
        assert next(r for r in rows if int(r["id"]) == ids["formula"])["title"].startswith("'=HYPERLINK")
        lines = (await client.get("/api/v1/articles/export", params={"q": "harbour", "format": "jsonl"})).text
        items = [json.loads(line) for line in lines.splitlines()]
        assert {i["id"] for i in items} == {ids["title"], ids["text"], ids["formula"]}
        assert items[0].keys() >= {"id", "url", "title", "published_at"}


async def test_cli_search_json_text_and_errors(api: ApiEnv) -> None:
    ids = await seed(api)
    found = json.loads(ok(await cli(api, "articles", "search", '"harbour wall"', "--org", "api-org", "--json")))
    assert [f["id"] for f in found] == [ids["title"]]
    assert found[0].keys() >= {"id", "url", "title", "published_at", "snippet", "score", "highlights"}
    text = ok(await cli(api, "articles", "search", "harbour", "--org", "api-org", "--limit", "1"))
    assert "«harbour»" in text.lower() or "«Harbour»" in text
    bad = await cli(api, "articles", "search", "harbour (wall", "--org", "api-org")
    assert bad.exit_code == 2 and "unbalanced parenthesis at column 9" in bad.stderr
    assert (await cli(api, "articles", "search", "harbour", "--org", "nope")).exit_code == 2


async def test_cli_exports_csv_and_jsonl(api: ApiEnv) -> None:
    ids = await seed(api)
    printed = ok(await cli(api, "articles", "search", "harbour", "--org", "api-org", "--format", "csv"))
    rows = list(csv.DictReader(io.StringIO(printed)))
    assert sorted(int(r["id"]) for r in rows) == sorted([ids["title"], ids["text"], ids["formula"]])
    printed = ok(await cli(api, "articles", "search", "harbour", "--format", "jsonl", "--limit", "2"))
    assert len(printed.splitlines()) == 2
