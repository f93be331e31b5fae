"""Sign-in, sessions, CSRF, rate limiting and token revocation, through the HTTP API."""

from __future__ import annotations

import pytest

from tests.integration.api_fixtures import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    MEMBER_EMAIL,
    ApiEnv,
    assert_error,
)


async def test_login_sets_a_safe_cookie_and_me_returns_the_user(api: ApiEnv) -> None:
    async with api.client() as client:
        response = await client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["user"]["email"] == ADMIN_EMAIL and body["user"]["role"] == "admin"
        assert "password_hash" not in body["user"]
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("mediabeat_session=")
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
        me = await client.get("/api/v1/auth/me")
        assert me.status_code == 200
        assert me.json()["user"]["email"] == ADMIN_EMAIL
        assert me.json()["csrf_token"] == body["csrf_token"]


async def test_cookie_is_secure_behind_an_https_public_url(database_url: str) -> None:
    from tests.integration.api_fixtures import make_env

    env = await make_env(database_url, public_url="https://beat.example.org")
    try:
        async with env.client() as client:
            response = await client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
            assert "Secure" in response.headers["set-cookie"]
    finally:
        await env.services.close()


async def test_unknown_user_and_wrong_password_get_the_same_answer(api: ApiEnv) -> None:
    async with api.client() as client:
        unknown = await client.post("/api/v1/auth/login", json={"email": "nobody@example.test", "password": "x" * 14})
        wrong = await client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": "x" * 14})
    first = assert_error(unknown, 401, "invalid_credentials")
    second = assert_error(wrong, 401, "invalid_credentials")
    assert first == second
    assert "set-cookie" not in unknown.headers


async def test_failed_logins_are_limited_per_account(api: ApiEnv) -> None:
    async with api.client() as client:
        for _ in range(3):
            response = await client.post("/api/v1/auth/login", json={"email": MEMBER_EMAIL, "password": "wrong" * 3})
            assert_error(response, 401, "invalid_credentials")
        limited = await client.post("/api/v1/auth/login", json={"email": MEMBER_EMAIL, "password": "wrong" * 3})
        assert_error(limited, 429, "too_many_attempts")
        assert int(limited.headers["retry-after"]) > 0
        # even the right password is refused while the account is limited
        from tests.integration.api_fixtures import MEMBER_PASSWORD

        right = await client.post("/api/v1/auth/login", json={"email": MEMBER_EMAIL, "password": MEMBER_PASSWORD})
        assert_error(right, 429)
        # another account from another address is not affected
    transport_client = api.client()
    async with transport_client as client:
        ok = await client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert ok.status_code == 200


async def test_failed_logins_are_limited_per_ip(api: ApiEnv) -> None:
    async with api.client() as client:
        for n in range(6):
            response = await client.post(
                "/api/v1/auth/login", json={"email": f"guess{n}@example.test", "password": "wrong" * 3}
            )
            assert_error(response, 401)
        limited = await client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert_error(limited, 429, "too_many_attempts")


async def test_logout_ends_the_session(api: ApiEnv) -> None:
    async with api.client() as client:
        login = await client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        csrf = login.json()["csrf_token"]
        refused = await client.post("/api/v1/auth/logout")
        assert_error(refused, 403, "csrf_failed")
        out = await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 200
        assert_error(await client.get("/api/v1/auth/me"), 401)


async def test_a_stale_cookie_is_a_401_not_anonymous(api: ApiEnv) -> None:
    async with api.client(cookies={"mediabeat_session": "x" * 43}) as client:
        assert_error(await client.get("/api/v1/auth/me"), 401, "unauthenticated")
        # signing in again works with the stale cookie still present
        ok = await client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert ok.status_code == 200


async def test_revoked_token_is_refused(api: ApiEnv) -> None:
    async with api.admin() as client:
        assert (await client.get("/api/v1/auth/me")).status_code == 200
    tokens = await api.auth.tokens.list()
    admin_token = next(t for t in tokens if t.email == ADMIN_EMAIL)
    assert admin_token.last_used_at is not None
    await api.auth.tokens.revoke(admin_token.id, now=api.services.clock.now())
    async with api.admin() as client:
        assert_error(await client.get("/api/v1/auth/me"), 401, "unauthenticated")


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Basic YWRtaW46YWRtaW4=", "Bearer mb_" + "a" * 43])
async def test_bad_credentials_are_401(api: ApiEnv, header: str) -> None:
    async with api.client(headers={"Authorization": header}) as client:
        assert_error(await client.get("/api/v1/auth/me"), 401, "unauthenticated")
