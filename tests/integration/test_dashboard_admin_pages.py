"""The users, API tokens and audit log pages over HTTP: admins only, escaped, and the changes their forms send."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from mediabeat.domain.content import Actor, InvalidInput
from tests.integration.api_fixtures import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    MEMBER_EMAIL,
    MEMBER_PASSWORD,
    ApiEnv,
    assert_error,
)

PAGES = ["/app/admin/users", "/app/admin/tokens", "/app/admin/audit"]
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
NEW_EMAIL = "editor@example.test"
NEW_PASSWORD = "editor-pass-123456"


@contextlib.asynccontextmanager
async def signed_in(
    api: ApiEnv, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser's session; every change carries the CSRF token as dashboard.js sends it."""
    async with api.client() as client:
        response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        if "csrf_token" in response.json():
            client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


async def test_only_admins_see_the_pages_and_the_navigation_links_them(api: ApiEnv) -> None:
    async with api.client() as client:
        for path in PAGES:
            response = await client.get(path)
            assert response.status_code == 303
            assert response.headers["location"] == f"/login?next={quote(path, safe='/')}"
    async with signed_in(api, MEMBER_EMAIL, MEMBER_PASSWORD) as member:
        for path in PAGES:
            response = await member.get(path)
            assert response.status_code == 403 and "text/html" in response.headers["content-type"], path
            assert "members may not" in response.text and MEMBER_EMAIL in response.text
            assert ADMIN_EMAIL not in response.text
        home = (await member.get("/app/articles")).text
        assert 'href="/app/admin/users"' not in home and 'href="/app/admin/audit"' not in home
    async with api.admin() as token_client:  # a bearer token is for the API, not the pages
        assert (await token_client.get("/app/admin/users")).status_code == 303
    async with signed_in(api) as admin:
        for path in PAGES:
            response = await admin.get(path)
            assert response.status_code == 200, path
            assert "default-src 'self'" in response.headers["content-security-policy"]
            for link in PAGES:
                assert f'href="{link}"' in response.text
            assert f'href="{path}" aria-current="page"' in response.text or 'aria-current="page"' in response.text


async def test_users_page_lists_users_and_its_forms_create_change_role_disable_and_reset(api: ApiEnv) -> None:
    async with signed_in(api) as admin:
        html = (await admin.get("/app/admin/users")).text
        assert ADMIN_EMAIL in html and MEMBER_EMAIL in html and "api-org" in html
        assert 'id="user-form"' in html and 'id="reset-form"' in html
        assert html.count('data-action="user-active"') == 3  # every user's row but one's own
        # Without the CSRF token, a cookie cannot change anything.
        no_csrf = {k: v for k, v in admin.headers.items() if k.lower() != "x-csrf-token"}
        refused = await admin.post(
            "/api/v1/users",
            json={"email": NEW_EMAIL, "role": "member", "org_id": api.org_id, "password": NEW_PASSWORD},
            headers={**no_csrf, "X-CSRF-Token": ""},
        )
        assert_error(refused, 403, "csrf_failed")

        created = await admin.post(
            "/api/v1/users",
            json={"email": NEW_EMAIL, "role": "member", "org_id": api.org_id, "password": NEW_PASSWORD},
        )
        assert created.status_code == 201, created.text
        new_id = created.json()["id"]
        promoted = await admin.patch(f"/api/v1/users/{new_id}", json={"role": "admin"})
        assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
        html = (await admin.get("/app/admin/users")).text
        row = re.search(rf'<tr data-user-id="{new_id}".*?</tr>', html, flags=re.DOTALL)
        assert row and '<option value="admin" selected>' in row.group(0)

        reset = await admin.patch(
            f"/api/v1/users/{new_id}", json={"password": "a-new-pass-987654", "must_change_password": True}
        )
        assert reset.status_code == 200 and reset.json()["must_change_password"] is True
        async with signed_in(api, NEW_EMAIL, "a-new-pass-987654") as editor:
            asked = await editor.get("/app/admin/users")
            assert asked.status_code == 303 and asked.headers["location"].startswith("/app/account")

        disabled = await admin.patch(f"/api/v1/users/{new_id}", json={"is_active": False})
        assert disabled.status_code == 200 and disabled.json()["is_active"] is False
        html = (await admin.get("/app/admin/users")).text
        row = re.search(rf'<tr data-user-id="{new_id}".*?</tr>', html, flags=re.DOTALL)
        assert row and 'class="is-disabled"' in row.group(0) and 'aria-checked="false"' in row.group(0)
        assert "must change password" in row.group(0)
    failed = await api.client().post("/api/v1/auth/login", json={"email": NEW_EMAIL, "password": "a-new-pass-987654"})
    assert failed.status_code == 401
    events = await api.auth.audit.list(action="user.update")
    assert {str(e.details.get("role")) for e in events if e.details} >= {"admin"}
    assert all(e.actor == ADMIN_EMAIL and e.details and e.details["via"] == "session" for e in events)


async def test_role_changes_that_would_lock_people_out_are_refused_with_a_reason(api: ApiEnv) -> None:
    admin_id = (await api.services.content.accounts.get_user_by_email(ADMIN_EMAIL)).id
    member_id = (await api.services.content.accounts.get_user_by_email(MEMBER_EMAIL)).id
    async with signed_in(api) as admin:
        own = await admin.patch(f"/api/v1/users/{admin_id}", json={"role": "member"})
        assert_error(own, 422)
        assert "your own role" in own.text
        bad = await admin.patch(f"/api/v1/users/{member_id}", json={"role": "owner"})
        assert bad.status_code == 422
        short = await admin.patch(f"/api/v1/users/{member_id}", json={"password": "short"})
        assert_error(short, 422)
    accounts = api.services.content.accounts
    with pytest.raises(InvalidInput, match="last admin"):  # from the CLI, which is no user of its own
        await accounts.update_user(admin_id, Actor("cli:root"), role="member")
    second = await accounts.create_user(
        "second@example.test", role="admin", org_id=None, password=NEW_PASSWORD, actor=Actor("test")
    )
    async with signed_in(api, "second@example.test", NEW_PASSWORD) as other:
        demoted = await other.patch(f"/api/v1/users/{admin_id}", json={"role": "member"})
        assert demoted.status_code == 200 and demoted.json()["role"] == "member"
        assert (await api.auth.users.count_admins()) == 1
    with pytest.raises(InvalidInput, match="belongs to no organisation"):
        await accounts.update_user(second.id, Actor("cli:root"), role="member")


async def test_tokens_page_shows_tokens_without_secrets_and_revokes(api: ApiEnv) -> None:
    async with signed_in(api) as admin:
        created = await admin.post("/api/v1/tokens", json={"name": HOSTILE})
        assert created.status_code == 201
        secret, token_id, prefix = created.json()["token"], created.json()["id"], created.json()["prefix"]
        html = (await admin.get("/app/admin/tokens")).text
        assert secret not in html and f"<code>{prefix}…</code>" in html
        assert "<script>alert" not in html and "&lt;script&gt;alert(" in html
        assert html.count('data-action="revoke-token"') == 5  # the four test tokens and this one
        async with api.client(secret) as script:
            assert (await script.get("/api/v1/scheduler/tasks")).status_code == 200
            revoked = await admin.delete(f"/api/v1/tokens/{token_id}")
            assert revoked.status_code == 200 and revoked.json()["revoked_at"]
            assert (await script.get("/api/v1/scheduler/tasks")).status_code == 401
        html = (await admin.get("/app/admin/tokens")).text
        row = re.search(rf'<tr data-token-id="{token_id}".*?</tr>', html, flags=re.DOTALL)
        assert row and "Revoked" in row.group(0) and "revoke-token" not in row.group(0)
        assert html.count('data-action="revoke-token"') == 4


async def test_audit_page_filters_by_actor_and_action_escapes_and_pages(api: ApiEnv) -> None:
    audit = api.services.content.audit
    for n in range(55):
        await audit.record(Actor("cli:alice"), "feed.create", target_type="feed", target_id=n, details={"n": n})
    await audit.record(Actor(HOSTILE), "org.create", details={"name": HOSTILE})
    async with signed_in(api) as admin:
        html = (await admin.get("/app/admin/audit")).text
        assert "<script>alert" not in html and "&lt;script&gt;alert(" in html
        assert html.count("<tr data-event-id=") == 50 and 'rel="next"' in html
        filtered = (await admin.get("/app/admin/audit", params={"actor": "cli:alice", "action": "feed.create"})).text
        ids = [int(i) for i in re.findall(r'<tr data-event-id="(\d+)"', filtered)]
        assert len(ids) == 50 and "org.create" not in filtered.split("<tbody>")[1]
        cursor = re.search(r'rel="next" href="\?actor=cli%3Aalice&amp;action=feed.create&amp;cursor=(\d+)"', filtered)
        assert cursor, "no link to older events"
        older = (
            await admin.get(
                "/app/admin/audit", params={"actor": "cli:alice", "action": "feed.create", "cursor": cursor.group(1)}
            )
        ).text
        rest = [int(i) for i in re.findall(r'<tr data-event-id="(\d+)"', older)]
        assert len(rest) == 5 and max(rest) < min(ids) and 'rel="next"' not in older
        none = (await admin.get("/app/admin/audit", params={"actor": "nobody"})).text
        assert "No events match" in none
        bad = await admin.get("/app/admin/audit", params={"cursor": "x"})
        assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]
