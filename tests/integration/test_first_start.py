"""A new user's first hour over HTTP: the front door by role, error pages for people, changing one's password."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mediabeat.auth.passwords import hash_password
from mediabeat.cli.serve_cmd import dashboard_announcement, dashboard_url
from mediabeat.web.errors import wants_page
from tests.integration.api_fixtures import (
    ADMIN_PASSWORD,
    MEMBER_EMAIL,
    MEMBER_PASSWORD,
    ApiEnv,
    assert_error,
)
from tests.integration.test_dashboard_pages import signed_in

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
NEW_PASSWORD = "a-brand-new-pass-77"


@pytest.mark.parametrize(
    ("path", "accept", "page"),
    [
        ("/nope", BROWSER["Accept"], True),
        ("/app/nope", "*/*", True),
        ("/login", "", True),
        ("/api/v1/nope", BROWSER["Accept"], False),
        ("/nope", "application/json", False),
        ("/nope", "*/*", False),
        ("/metrics", "text/plain", False),
    ],
)
def test_people_get_pages_and_programs_get_json(path: str, accept: str, page: bool) -> None:
    assert wants_page(path, accept) is page


def test_the_start_up_line_names_the_dashboard_and_who_signs_in() -> None:
    assert dashboard_url("0.0.0.0", 8000) == "http://127.0.0.1:8000/app/"
    assert dashboard_url("::", 9000) == "http://[::1]:9000/app/"
    assert dashboard_url("10.0.0.5", 80) == "http://10.0.0.5:80/app/"
    generated = dashboard_announcement("127.0.0.1", 8000, ("admin@localhost", True))
    assert generated.startswith("dashboard: http://127.0.0.1:8000/app/ (sign in as admin@localhost with the password")
    assert "sign in as boss@example.test)" in dashboard_announcement("127.0.0.1", 1, ("boss@example.test", False))
    assert "sign in with your MediaBeat account" in dashboard_announcement("127.0.0.1", 1, None)


async def test_the_front_door_sends_each_visitor_to_their_own_start_page(api: ApiEnv) -> None:
    async with api.client() as anonymous:
        for path in ("/", "/app", "/app/"):
            response = await anonymous.get(path, headers=BROWSER)
            assert response.status_code == 303 and response.headers["location"] == "/login", path
    async with signed_in(api) as admin:
        assert (await admin.get("/")).headers["location"] == "/app/admin/scheduler"
        assert (await admin.get("/app")).headers["location"] == "/app/admin/scheduler"
    async with signed_in(api, MEMBER_EMAIL, MEMBER_PASSWORD) as member:
        assert (await member.get("/")).headers["location"] == "/app/articles"
        assert (await member.get("/app/")).headers["location"] == "/app/articles"


async def test_browsers_get_html_error_pages_and_api_clients_json(api: ApiEnv) -> None:
    async with api.client() as client:
        page = await client.get("/no/such/page", headers=BROWSER)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "There is no page at this address" in page.text and 'href="/"' in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert_error(await client.get("/no/such/page", headers={"Accept": "application/json"}), 404, "not_found")
        assert_error(await client.get("/no/such/page"), 404, "not_found")  # no Accept: a program
        assert_error(await client.get("/api/v1/no/such", headers=BROWSER), 404, "not_found")
        assert_error(await client.get("/api/v1/scheduler/tasks", headers=BROWSER), 401, "unauthenticated")
        wrong_method = await client.post("/app/account", headers=BROWSER)
        assert wrong_method.status_code == 405 and "text/html" in wrong_method.headers["content-type"]
    async with signed_in(api) as admin:
        invalid = await admin.get("/app/admin/feeds?state=bogus", headers=BROWSER)
        assert invalid.status_code == 422 and "text/html" in invalid.headers["content-type"]
        assert "state" in invalid.text and "Sign out" in invalid.text
        assert_error(await admin.get("/api/v1/feeds", params={"org_id": "x"}, headers=BROWSER), 422, "invalid")
    async with signed_in(api, MEMBER_EMAIL, MEMBER_PASSWORD) as member:
        refused = await member.get("/app/admin/jobs", headers=BROWSER)
        assert refused.status_code == 403 and "text/html" in refused.headers["content-type"]


async def test_a_user_changes_their_own_password_and_other_sessions_end(api: ApiEnv) -> None:
    body = {"current_password": MEMBER_PASSWORD, "new_password": NEW_PASSWORD}
    async with (
        signed_in(api, MEMBER_EMAIL, MEMBER_PASSWORD) as other_browser,
        signed_in(api, MEMBER_EMAIL, MEMBER_PASSWORD) as client,
    ):
        login = await client.get("/api/v1/auth/me")
        csrf = login.json()["csrf_token"]
        assert_error(await client.post("/api/v1/auth/password", json=body), 403, "csrf_failed")
        wrong = {**body, "current_password": "not-my-password-1"}
        error = assert_error(
            await client.post("/api/v1/auth/password", json=wrong, headers={"X-CSRF-Token": csrf}), 422
        )
        assert error["details"][0]["field"] == "current_password"
        weak = {**body, "new_password": "short"}
        error = assert_error(await client.post("/api/v1/auth/password", json=weak, headers={"X-CSRF-Token": csrf}), 422)
        assert error["details"][0]["field"] == "new_password" and "12 characters" in error["message"]
        changed = await client.post("/api/v1/auth/password", json=body, headers={"X-CSRF-Token": csrf})
        assert changed.status_code == 200, changed.text
        assert changed.json()["csrf_token"] not in (None, csrf)
        assert "mediabeat_session=" in changed.headers["set-cookie"]
        assert (await client.get("/api/v1/auth/me")).status_code == 200  # this browser stays signed in
        assert_error(await other_browser.get("/api/v1/auth/me"), 401)  # the other one is signed out
    async with api.client() as client:
        old = await client.post("/api/v1/auth/login", json={"email": MEMBER_EMAIL, "password": MEMBER_PASSWORD})
        assert_error(old, 401)
        new = await client.post("/api/v1/auth/login", json={"email": MEMBER_EMAIL, "password": NEW_PASSWORD})
        assert new.status_code == 200
    actions = [e.action for e in await api.auth.audit.list(actor=MEMBER_EMAIL)]
    assert actions.count("auth.password_changed") == 1


async def test_a_token_changes_its_users_password_without_csrf(api: ApiEnv) -> None:
    async with api.admin() as client:
        body = {"current_password": ADMIN_PASSWORD, "new_password": NEW_PASSWORD}
        changed = await client.post("/api/v1/auth/password", json=body)
        assert changed.status_code == 200 and changed.json()["csrf_token"] is None
        assert "set-cookie" not in changed.headers


async def test_a_generated_password_must_be_changed_at_the_next_sign_in(api: ApiEnv) -> None:
    now = datetime.now(UTC)
    await api.auth.users.create(
        "first@example.test", "admin", None, hash_password("generated-pass-123"), now=now, must_change_password=True
    )
    async with signed_in(api, "first@example.test", "generated-pass-123") as client:
        for path in ("/app/admin/scheduler", "/app/articles?q=x"):
            response = await client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/app/account?next=/app/")
        account = await client.get("/app/account?next=/app/admin/jobs")
        assert account.status_code == 200 and 'id="must-change"' in account.text
        assert 'data-next="/app/admin/jobs"' in account.text
        csrf = (await client.get("/api/v1/auth/me")).json()["csrf_token"]
        body = {"current_password": "generated-pass-123", "new_password": NEW_PASSWORD}
        changed = await client.post("/api/v1/auth/password", json=body, headers={"X-CSRF-Token": csrf})
        assert changed.status_code == 200 and changed.json()["user"]["must_change_password"] is False
        assert (await client.get("/app/admin/scheduler")).status_code == 200
        assert 'id="must-change"' not in (await client.get("/app/account")).text


async def test_the_account_page_needs_a_sign_in(api: ApiEnv) -> None:
    async with api.client() as client:
        response = await client.get("/app/account")
        assert response.status_code == 303 and response.headers["location"] == "/login?next=/app/account"
