"""The monitors API: members manage their own organisation's monitors, admins every one; matches paged and
exported; the secret Atom feed. On both databases."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import feedparser
import sqlalchemy as sa

from mediabeat.db.tables import articles, monitor_matches
from tests.integration.api_fixtures import ApiEnv, assert_error

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


async def create(env: ApiEnv, token: str, **body: object) -> dict[str, object]:
    async with env.client(token) as client:
        response = await client.post("/api/v1/monitors", json={"name": "harbour", "query": "harbour", **body})
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


async def add_matches(env: ApiEnv, monitor_id: int, org_id: int, count: int, *, title: str = "Harbour") -> None:
    """`count` articles and a match for each, written in bulk."""
    async with env.services.db.write() as conn:
        rows = [
            {
                "org_id": org_id,
                "url": f"https://x.test/{n}",
                "url_hash": f"h{monitor_id}-{n}",
                "title": f"{title} {n}",
                "fetched_at": NOW,
                "created_at": NOW,
            }
            for n in range(count)
        ]
        ids = [r[0] for r in await conn.execute(sa.insert(articles).returning(articles.c.id), rows)]
        await conn.execute(
            sa.insert(monitor_matches),
            [{"monitor_id": monitor_id, "org_id": org_id, "article_id": i, "matched_at": NOW} for i in ids],
        )


async def test_members_manage_their_own_organisations_monitors_only(api: ApiEnv) -> None:
    mine = await create(api, api.member_token, query='"city council" OR harbour')
    assert mine["org_id"] == api.org_id and "webhook_secret" in mine and str(mine["feed_url"]).endswith(".atom")
    assert "feed_token_hash" not in mine and "webhook_secret" not in {k for k in mine if k != "webhook_secret"}
    theirs = await create(api, api.other_token)
    async with api.member() as member, api.client(api.other_token) as other, api.admin() as admin:
        listed = (await member.get("/api/v1/monitors")).json()["items"]
        assert [m["id"] for m in listed] == [mine["id"]]
        assert_error(await member.get(f"/api/v1/monitors/{theirs['id']}"), 404)
        assert_error(await member.patch(f"/api/v1/monitors/{theirs['id']}", json={"active": False}), 404)
        assert_error(await member.delete(f"/api/v1/monitors/{theirs['id']}"), 404)
        assert_error(await member.get(f"/api/v1/monitors/{theirs['id']}/matches"), 404)
        assert_error(await member.get(f"/api/v1/monitors?org_id={api.other_org_id}"), 404)
        assert_error(await other.post("/api/v1/monitors", json={"name": "x", "query": "x", "org_id": api.org_id}), 404)
        assert len((await admin.get("/api/v1/monitors")).json()["items"]) == 2
        patched = await member.patch(f"/api/v1/monitors/{mine['id']}", json={"digest": "daily", "cooldown_s": 60})
        assert patched.status_code == 200 and patched.json()["digest"] == "daily"
        assert (await member.delete(f"/api/v1/monitors/{mine['id']}")).status_code == 204
        assert_error(await member.get(f"/api/v1/monitors/{mine['id']}"), 404)
    audit = await api.services.content.audit.store.list(limit=20)
    assert {"monitor.create", "monitor.change", "monitor.delete"} <= {e.action for e in audit}


async def test_bad_input_is_a_422_or_409_with_a_message(api: ApiEnv) -> None:
    await create(api, api.member_token)
    async with api.member() as member:
        error = assert_error(await member.post("/api/v1/monitors", json={"name": "x", "query": "(harbour"}), 422)
        assert "unbalanced parenthesis at column 1" in error["message"]
        assert_error(await member.post("/api/v1/monitors", json={"name": "harbour", "query": "x"}), 409)
        hook = {"name": "y", "query": "x", "webhook_url": "http://127.0.0.1:9/hook"}
        error = assert_error(await member.post("/api/v1/monitors", json=hook), 422)
        assert error["message"] == (
            "webhook_url: the webhook URL is refused: 127.0.0.1 is an address the crawler never fetches (loopback); "
            "set MEDIABEAT_CRAWLER_ALLOW_PRIVATE_NETWORKS=true to allow loopback"
        )
        assert_error(await member.post("/api/v1/monitors", json={"name": "z", "query": "x", "digest": "weekly"}), 422)


async def test_matches_page_by_cursor_and_export_streams_every_row(api: ApiEnv) -> None:
    monitor = await create(api, api.member_token)
    monitor_id = int(str(monitor["id"]))
    await add_matches(api, monitor_id, api.org_id, 1_203)
    seen: list[int] = []
    async with api.member() as member:
        cursor = None
        while True:
            params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = (await member.get(f"/api/v1/monitors/{monitor_id}/matches", params=params)).json()
            seen += [m["id"] for m in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 1_203 and seen == sorted(seen, reverse=True)
        exported = await member.get(f"/api/v1/monitors/{monitor_id}/matches/export?format=csv")
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert len(rows) == 1_203 and rows[0]["title"] == "Harbour 1202"
        lines = (await member.get(f"/api/v1/monitors/{monitor_id}/matches/export?format=jsonl")).text.splitlines()
        assert len(lines) == 1_203 and json.loads(lines[-1])["title"] == "Harbour 0"
        assert_error(await member.get(f"/api/v1/monitors/{monitor_id}/matches/export?format=xml"), 422)


async def test_the_atom_feed_is_valid_escaped_and_secret(api: ApiEnv) -> None:
    monitor = await create(api, api.member_token)
    await add_matches(api, int(str(monitor["id"])), api.org_id, 3, title='Harbour <b>&amp; "council"</b> \x0b')
    path = str(monitor["feed_url"]).removeprefix("http://testserver")
    async with api.client() as anonymous:
        response = await anonymous.get(path)
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/atom+xml")
        parsed = feedparser.parse(response.content)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert len(parsed.entries) == 3
        assert parsed.entries[0].title.startswith('Harbour <b>&amp; "council"</b>')
        assert (await anonymous.get(path.replace(".atom", "x.atom"))).status_code == 404
        assert (await anonymous.get("/monitors/not-a-token.atom")).status_code == 404
    async with api.member() as member:
        rotated = await member.patch(f"/api/v1/monitors/{monitor['id']}", json={"rotate_feed_token": True})
        new_path = str(rotated.json()["feed_url"]).removeprefix("http://testserver")
    async with api.client() as anonymous:
        assert (await anonymous.get(path)).status_code == 404
        assert (await anonymous.get(new_path)).status_code == 200


async def test_members_manage_monitors_in_the_dashboard(api: ApiEnv) -> None:
    from tests.integration.api_fixtures import MEMBER_EMAIL, MEMBER_PASSWORD, OTHER_EMAIL, OTHER_PASSWORD
    from tests.integration.test_dashboard_pages import signed_in

    async with signed_in(api, MEMBER_EMAIL, MEMBER_PASSWORD) as member:
        page = await member.get("/app/monitors")
        assert page.status_code == 200 and "New monitor" in page.text
        csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        form = {"csrf_token": csrf, "name": "<b>ports</b>", "query": "harbour OR ferry", "digest": "hourly"}
        created = await member.post("/app/monitors", data=form)
        assert created.status_code == 200 and "data-feed-url" in created.text
        assert "&lt;b&gt;ports&lt;/b&gt;" in created.text and "<b>ports</b>" not in created.text
        bad = await member.post("/app/monitors", data={**form, "name": "x", "query": "(harbour"})
        assert bad.status_code == 422 and "unbalanced parenthesis" in bad.text
        forged = await member.post("/app/monitors", data={**form, "csrf_token": "wrong", "name": "y"})
        assert forged.status_code == 403
        [monitor] = await api.services.content.monitors.list(org_id=api.org_id)
        assert (await member.get(f"/app/monitors/{monitor.id}")).status_code == 200
    async with signed_in(api, OTHER_EMAIL, OTHER_PASSWORD) as other:
        assert (await other.get(f"/app/monitors/{monitor.id}")).status_code == 404
        assert "ports" not in (await other.get("/app/monitors")).text
    async with signed_in(api, MEMBER_EMAIL, MEMBER_PASSWORD) as member:
        page = await member.get(f"/app/monitors/{monitor.id}")
        csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        deleted = await member.post(f"/app/monitors/{monitor.id}/delete", data={"csrf_token": csrf})
        assert deleted.status_code == 303
    assert await api.services.content.monitors.list(org_id=api.org_id) == []
