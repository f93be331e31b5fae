"""Feeds, OPML, articles, users, tokens and audit through the API; members confined to their organisation."""

from __future__ import annotations

from mediabeat.crawler.urls import canonicalize
from mediabeat.db.stores.articles import ArticleStore, NewArticle
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import JobStore, NewJob
from tests.integration.api_fixtures import ADMIN_EMAIL, MEMBER_EMAIL, ApiEnv, assert_error

OPML = b"""<?xml version="1.0"?>
<opml version="2.0"><head><title>x</title></head><body>
  <outline text="One" xmlUrl="https://one.example.org/rss"/>
  <outline text="Folder"><outline text="Two" xmlUrl="https://two.example.org/atom.xml"/></outline>
  <outline text="Bad" xmlUrl="javascript:alert(1)"/>
</body></opml>"""


async def _article(api: ApiEnv, org_id: int, n: int) -> int:
    return await ArticleStore(api.services.db).save(
        NewArticle(
            org_id=org_id,
            feed_id=None,
            url=f"https://news.example.org/{org_id}/{n}",
            url_hash=f"{org_id:04d}{n:060d}",
            canonical_url=None,
            title=f"Story {n}",
            author=None,
            published_at=None,
            summary="s",
            text="the full text",
            language="en",
        ),
        now=api.services.clock.now(),
    )


async def test_a_member_manages_their_own_orgs_feeds(api: ApiEnv) -> None:
    async with api.member() as client:
        created = await client.post("/api/v1/feeds", json={"url": "https://news.example.org/rss", "check": False})
        assert created.status_code == 201, created.text
        feed = created.json()
        assert feed["org_id"] == api.org_id
        again = await client.post("/api/v1/feeds", json={"url": "https://news.example.org/rss", "check": False})
        assert again.status_code == 200 and again.json()["id"] == feed["id"]
        listed = (await client.get("/api/v1/feeds")).json()["items"]
        assert [f["id"] for f in listed] == [feed["id"]]
        off = await client.patch(f"/api/v1/feeds/{feed['id']}", json={"active": False, "reason": "paywalled"})
        assert off.json()["active"] is False and off.json()["disabled_reason"] == "paywalled"
        assert (await client.delete(f"/api/v1/feeds/{feed['id']}")).status_code == 204
    actions = [e.action for e in await api.auth.audit.list(actor=MEMBER_EMAIL)]
    assert actions == ["feed.delete", "feed.disable", "feed.create"]


async def test_one_feed_however_its_url_is_spelled_through_the_api_the_opml_import_and_the_cli(api: ApiEnv) -> None:
    spellings = [
        "HTTPS://News.Example.ORG:443/rss?utm_source=newsletter#latest",
        "https://news.example.org/rss",
        "  https://news.example.org./rss  ",
    ]
    async with api.member() as client:
        created = [await client.post("/api/v1/feeds", json={"url": url, "check": False}) for url in spellings]
        assert [r.status_code for r in created] == [201, 200, 200]
        assert {r.json()["id"] for r in created} == {created[0].json()["id"]}
        assert created[0].json()["url"] == "https://news.example.org/rss"
        opml = b'<opml version="2.0"><body><outline xmlUrl="https://NEWS.example.org/rss?fbclid=x"/></body></opml>'
        imported = (await client.post("/api/v1/feeds/import", content=opml)).json()
        assert (imported["added"], imported["existing"]) == (0, 1)
        assert_error(await client.post("/api/v1/feeds", json={"url": "https://news.example.org/a b"}), 422)
    # The CLI stores the same canonical spelling, so it finds the API's feed.
    store = FeedStore(api.services.db)
    _, new = await store.add(api.org_id, canonicalize(spellings[0]), now=api.services.clock.now())
    assert new is False and len(await store.list(org_id=api.org_id)) == 1


async def test_only_admins_set_a_feeds_priority_and_its_queued_jobs_follow(api: ApiEnv) -> None:
    async with api.member() as member:
        feed = (await member.post("/api/v1/feeds", json={"url": "https://news.example.org/rss", "check": False})).json()
        assert feed["priority"] == 0
        refused = await member.patch(f"/api/v1/feeds/{feed['id']}", json={"priority": 5})
        assert assert_error(refused, 403, "forbidden")["message"] == "only an admin can set a feed's priority"
        empty = assert_error(await member.patch(f"/api/v1/feeds/{feed['id']}", json={}), 422, "invalid")
        assert empty["details"] == [{"field": "active", "message": "give active, priority or both"}]
    await JobStore(api.services.db).enqueue(
        [NewJob(api.org_id, feed["id"], "https://news.example.org/a", "a" * 64)], now=api.services.clock.now()
    )
    async with api.admin() as admin:
        assert_error(await admin.patch(f"/api/v1/feeds/{feed['id']}", json={"priority": 10}), 422)
        both = await admin.patch(f"/api/v1/feeds/{feed['id']}", json={"priority": 8, "active": False})
        assert both.status_code == 200 and (both.json()["priority"], both.json()["active"]) == (8, False)
        jobs = (await admin.get("/api/v1/jobs")).json()["items"]
        assert [(j["url"], j["priority"]) for j in jobs] == [("https://news.example.org/a", 8)]
    events = await api.auth.audit.list(actor=ADMIN_EMAIL)
    assert [e.action for e in events] == ["feed.priority", "feed.disable"]
    assert events[0].details and events[0].details["priority"] == 8
    assert (await FeedStore(api.services.db).get(feed["id"])).priority == 8  # type: ignore[union-attr]


async def test_a_member_cannot_reach_another_orgs_data(api: ApiEnv) -> None:
    async with api.client(api.other_token) as other:
        theirs = (
            await other.post("/api/v1/feeds", json={"url": "https://secret.example.org/rss", "check": False})
        ).json()
    their_article = await _article(api, api.other_org_id, 1)
    our_article = await _article(api, api.org_id, 2)
    async with api.member() as client:
        for method, url, body in [
            ("GET", f"/api/v1/feeds/{theirs['id']}", None),
            ("PATCH", f"/api/v1/feeds/{theirs['id']}", {"active": False}),
            ("DELETE", f"/api/v1/feeds/{theirs['id']}", None),
            ("GET", f"/api/v1/articles/{their_article}", None),
            ("GET", f"/api/v1/feeds?org_id={api.other_org_id}", None),
            ("GET", f"/api/v1/articles?org_id={api.other_org_id}", None),
            ("GET", f"/api/v1/articles?feed_id={theirs['id']}", None),
            ("GET", f"/api/v1/feeds/export?org_id={api.other_org_id}", None),
            ("POST", "/api/v1/feeds", {"url": "https://x.example.org/rss", "org_id": api.other_org_id, "check": False}),
        ]:
            response = await client.request(method, url, json=body)
            # 404, not 403: whether it exists is none of a member's business
            assert_error(response, 404, "not_found")
        articles = (await client.get("/api/v1/articles")).json()["items"]
        assert [a["id"] for a in articles] == [our_article]
        assert "text" not in articles[0]
        assert (await client.get(f"/api/v1/articles/{our_article}")).json()["text"] == "the full text"
        assert (await client.get("/api/v1/feeds")).json()["items"] == []
    async with api.admin() as client:
        everything = (await client.get("/api/v1/articles")).json()["items"]
        assert {a["id"] for a in everything} == {our_article, their_article}
        assert (await client.get(f"/api/v1/feeds/{theirs['id']}")).status_code == 200


async def test_opml_import_and_export_round_trip(api: ApiEnv) -> None:
    async with api.member() as client:
        imported = await client.post("/api/v1/feeds/import", content=OPML, headers={"Content-Type": "text/x-opml"})
        assert imported.status_code == 200, imported.text
        body = imported.json()
        assert (body["added"], body["existing"]) == (2, 0)
        again = (
            await client.post("/api/v1/feeds/import", content=OPML, headers={"Content-Type": "text/x-opml"})
        ).json()
        assert (again["added"], again["existing"]) == (0, 2)
        exported = await client.get("/api/v1/feeds/export")
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/x-opml")
        assert b"https://one.example.org/rss" in exported.content and b"two.example.org" in exported.content
        broken = await client.post("/api/v1/feeds/import", content=b"<html>", headers={"Content-Type": "text/x-opml"})
        assert_error(broken, 422, "invalid_opml")
        evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><opml><body/></opml>'
        assert_error(await client.post("/api/v1/feeds/import", content=evil), 422, "invalid_opml")


async def test_admins_manage_users_and_tokens(api: ApiEnv) -> None:
    async with api.admin() as client:
        weak = await client.post(
            "/api/v1/users", json={"email": "new@example.test", "password": "short", "org_id": api.org_id}
        )
        error = assert_error(weak, 422, "invalid")
        assert "at least 12 characters" in error["message"]
        made = await client.post(
            "/api/v1/users",
            json={"email": "New@Example.test", "password": "a-long-enough-pass", "org_id": api.org_id},
        )
        assert made.status_code == 201 and made.json()["email"] == "new@example.test"
        duplicate = await client.post(
            "/api/v1/users", json={"email": "new@example.test", "password": "a-long-enough-pass", "org_id": api.org_id}
        )
        assert_error(duplicate, 422)
        token = await client.post("/api/v1/tokens", json={"name": "script", "user_id": made.json()["id"]})
        assert token.status_code == 201 and token.json()["token"].startswith("mb_")
        secret = token.json()["token"]
        assert all("token" not in t for t in (await client.get("/api/v1/tokens")).json()["items"])
    async with api.client(secret) as newbie:
        assert (await newbie.get("/api/v1/auth/me")).json()["user"]["email"] == "new@example.test"
        assert_error(await newbie.get("/api/v1/users"), 403)
    async with api.admin() as client:
        revoked = await client.delete(f"/api/v1/tokens/{token.json()['id']}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        deactivated = await client.patch(f"/api/v1/users/{made.json()['id']}", json={"is_active": False})
        assert deactivated.json()["is_active"] is False
        audit = (await client.get("/api/v1/audit", params={"actor": ADMIN_EMAIL, "limit": 3})).json()
        assert [e["action"] for e in audit["items"]] == ["user.update", "token.revoke", "token.create"]
        assert audit["next_cursor"] is not None
        older = (await client.get("/api/v1/audit", params={"cursor": audit["next_cursor"]})).json()
        assert older["items"][0]["action"] == "user.create" and older["items"][0]["ip"] == "127.0.0.1"
    async with api.client(secret) as newbie:
        assert_error(await newbie.get("/api/v1/auth/me"), 401)


async def test_orgs_and_jobs(api: ApiEnv) -> None:
    async with api.admin() as client:
        made = await client.post("/api/v1/orgs", json={"name": "newsroom"})
        assert made.status_code == 201
        assert_error(await client.post("/api/v1/orgs", json={"name": "newsroom"}), 409, "exists")
        names = [o["name"] for o in (await client.get("/api/v1/orgs")).json()["items"]]
        assert "newsroom" in names
        jobs = (await client.get("/api/v1/jobs")).json()
        assert jobs["items"] == [] and jobs["next_cursor"] is None
        assert (await client.post("/api/v1/jobs/retry")).json() == {"requeued": 0, "not_found": [], "not_failed": []}
        assert (await client.delete(f"/api/v1/orgs/{made.json()['id']}")).status_code == 204
