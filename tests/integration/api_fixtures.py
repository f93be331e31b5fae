"""Fixtures for the API tests: the real app on a fresh database, users (an admin, an operator, two members),
tokens and clients over ASGI."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mediabeat.app import Services, build_services, create_app
from mediabeat.auth.passwords import hash_password
from mediabeat.auth.service import AuthService
from mediabeat.settings import load_settings

ADMIN_EMAIL = "admin@example.test"
ADMIN_PASSWORD = "admin-pass-123456"
MEMBER_EMAIL = "member@example.test"
MEMBER_PASSWORD = "member-pass-123456"
OTHER_EMAIL = "other@example.test"
OTHER_PASSWORD = "other-pass-1234567"
OPERATOR_EMAIL = "operator@example.test"
OPERATOR_PASSWORD = "operator-pass-123456"


@functools.cache
def _hash(password: str) -> str:
    """argon2 is slow on purpose: hash each test password once per process."""
    return hash_password(password)


@dataclass
class ApiEnv:
    app: FastAPI
    services: Services
    auth: AuthService
    admin_token: str
    member_token: str
    other_token: str
    org_id: int
    other_org_id: int
    operator_token: str = ""

    def client(
        self, token: str | None = None, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.AsyncClient:
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False, client=("127.0.0.1", 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers, **kwargs)

    def admin(self) -> httpx.AsyncClient:
        return self.client(self.admin_token)

    def member(self) -> httpx.AsyncClient:
        return self.client(self.member_token)

    def operator(self) -> httpx.AsyncClient:
        return self.client(self.operator_token)

    def token_of(self, role: str) -> str:
        return {"admin": self.admin_token, "operator": self.operator_token, "member": self.member_token}[role]


async def make_env(database_url: str, **overrides: Any) -> ApiEnv:
    settings = load_settings(database_url=database_url, enable_scheduler=False, **overrides)
    services = build_services(settings)
    app = create_app(settings, services=services)
    auth = services.auth
    org_id = await auth.org_id("api-org", create=True)
    other_org_id = await auth.org_id("other-org", create=True)
    assert org_id is not None and other_org_id is not None
    now = services.clock.now()
    admin = await auth.users.create(ADMIN_EMAIL, "admin", org_id, _hash(ADMIN_PASSWORD), now=now)
    member = await auth.users.create(MEMBER_EMAIL, "member", org_id, _hash(MEMBER_PASSWORD), now=now)
    other = await auth.users.create(OTHER_EMAIL, "member", other_org_id, _hash(OTHER_PASSWORD), now=now)
    operator = await auth.users.create(OPERATOR_EMAIL, "operator", None, _hash(OPERATOR_PASSWORD), now=now)
    admin_token, _ = await auth.create_token(admin, "tests")
    member_token, _ = await auth.create_token(member, "tests")
    other_token, _ = await auth.create_token(other, "tests")
    operator_token, _ = await auth.create_token(operator, "tests")
    return ApiEnv(app, services, auth, admin_token, member_token, other_token, org_id, other_org_id, operator_token)


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[ApiEnv]:
    env = await make_env(database_url, login_max_failures=3, login_max_failures_per_ip=6)
    yield env
    await env.services.close()


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    error: dict[str, Any] = body["error"]
    return error
