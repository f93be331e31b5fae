"""The 401/403/404/422 matrix for every API endpoint, parametrised over one route table.

A test checks that the table covers every operation in the OpenAPI schema, so a new endpoint
without a row here fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.integration.api_fixtures import ApiEnv, assert_error

UNKNOWN = "999999"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    admin_only: bool = True
    body: Any = None  # a valid body, so that 404 is about the id
    content: bytes | None = None
    unknown: dict[str, str] = field(default_factory=dict)  # path values that do not exist: expect 404
    invalid: str | None = None  # a path (with query) that is invalid input: expect 422
    invalid_body: Any = None  # or a body that is invalid input


ROUTES = [
    Route("GET", "/api/v1/auth/me", admin_only=False),
    Route(
        "POST",
        "/api/v1/auth/password",
        admin_only=False,
        body={"current_password": "wrong-password-1", "new_password": "another-password-2"},
        invalid_body={"current_password": "", "new_password": "another-password-2"},
    ),
    Route("GET", "/api/v1/scheduler/tasks"),
    Route("POST", "/api/v1/scheduler/tasks", invalid_body={"name": "Bad Name!", "handler": "x", "cron": "* * *"}),
    Route(
        "GET", "/api/v1/scheduler/tasks/{task_id}", unknown={"task_id": UNKNOWN}, invalid="/api/v1/scheduler/tasks/abc"
    ),
    Route(
        "PATCH",
        "/api/v1/scheduler/tasks/{task_id}",
        body={"description": "x"},
        unknown={"task_id": UNKNOWN},
        invalid_body={"cron": "61 * * * *"},
    ),
    Route(
        "DELETE", "/api/v1/scheduler/tasks/{task_id}", unknown={"task_id": UNKNOWN}, invalid="/api/v1/scheduler/tasks/0"
    ),
    Route(
        "POST",
        "/api/v1/scheduler/tasks/{task_id}/toggle",
        unknown={"task_id": UNKNOWN},
        invalid_body={"enabled": "sometimes"},
    ),
    Route(
        "GET",
        "/api/v1/scheduler/tasks/{task_id}/upcoming",
        unknown={"task_id": UNKNOWN},
        invalid="/api/v1/scheduler/tasks/{task_id}/upcoming?count=0",
    ),
    Route(
        "GET",
        "/api/v1/scheduler/tasks/{task_id}/alerts",
        unknown={"task_id": UNKNOWN},
        invalid="/api/v1/scheduler/tasks/{task_id}/alerts?recent=-1",
    ),
    Route(
        "PATCH",
        "/api/v1/scheduler/tasks/{task_id}/alerts",
        body={"missing": True},
        unknown={"task_id": UNKNOWN},
        invalid_body={"after_failures": 0},
    ),
    Route(
        "POST",
        "/api/v1/scheduler/tasks/{name}/run",
        unknown={"name": "no-such-task"},
        invalid="/api/v1/scheduler/tasks/{name}/run?wait=perhaps",
    ),
    Route("GET", "/api/v1/scheduler/runs", invalid="/api/v1/scheduler/runs?limit=501"),
    Route("GET", "/api/v1/scheduler/runs/{run_id}", unknown={"run_id": UNKNOWN}, invalid="/api/v1/scheduler/runs/x"),
    Route(
        "POST",
        "/api/v1/scheduler/runs/{run_id}/cancel",
        unknown={"run_id": UNKNOWN},
        invalid="/api/v1/scheduler/runs/0/cancel",
    ),
    Route(
        "GET",
        "/api/v1/scheduler/runs/{run_id}/logs",
        unknown={"run_id": UNKNOWN},
        invalid="/api/v1/scheduler/runs/x/logs",
    ),
    Route("GET", "/api/v1/scheduler/pause"),
    Route("POST", "/api/v1/scheduler/pause", invalid_body={"reason": "x" * 501}),
    Route("POST", "/api/v1/scheduler/resume"),
    Route("GET", "/api/v1/scheduler/stats"),
    Route("GET", "/api/v1/scheduler/handlers"),
    Route("GET", "/api/v1/scheduler/cron/preview", invalid="/api/v1/scheduler/cron/preview?cron=0+0+32+*+*"),
    Route("GET", "/api/v1/scheduler/nodes"),
    Route("GET", "/api/v1/feeds", admin_only=False, invalid="/api/v1/feeds?active=maybe"),
    Route("POST", "/api/v1/feeds", admin_only=False, invalid_body={"url": "ftp://example.org/feed"}),
    Route("GET", "/api/v1/feeds/export", admin_only=False, invalid="/api/v1/feeds/export?org_id=zero"),
    Route(
        "POST",
        "/api/v1/feeds/import",
        admin_only=False,
        content=b"<opml><body/></opml>",
        invalid="/api/v1/feeds/import?org_id=-1",
    ),
    Route(
        "GET", "/api/v1/feeds/{feed_id}", admin_only=False, unknown={"feed_id": UNKNOWN}, invalid="/api/v1/feeds/1.5"
    ),
    Route(
        "POST",
        "/api/v1/feeds/{feed_id}/fetch",
        admin_only=False,
        unknown={"feed_id": UNKNOWN},
        invalid="/api/v1/feeds/x/fetch",
    ),
    Route(
        "PATCH",
        "/api/v1/feeds/{feed_id}",
        admin_only=False,
        body={"active": False},
        unknown={"feed_id": UNKNOWN},
        invalid_body={"active": None},
    ),
    Route(
        "DELETE", "/api/v1/feeds/{feed_id}", admin_only=False, unknown={"feed_id": UNKNOWN}, invalid="/api/v1/feeds/-3"
    ),
    Route("GET", "/api/v1/articles", admin_only=False, invalid="/api/v1/articles?limit=0"),
    Route("GET", "/api/v1/articles/export", admin_only=False, invalid="/api/v1/articles/export?q=%22open"),
    Route(
        "GET",
        "/api/v1/articles/{article_id}",
        admin_only=False,
        unknown={"article_id": UNKNOWN},
        invalid="/api/v1/articles/x",
    ),
    Route("GET", "/api/v1/stories", admin_only=False, invalid="/api/v1/stories?limit=0"),
    Route(
        "GET",
        "/api/v1/stories/{story_id}",
        admin_only=False,
        unknown={"story_id": UNKNOWN},
        invalid="/api/v1/stories/x",
    ),
    Route("GET", "/api/v1/orgs"),
    Route("POST", "/api/v1/orgs", invalid_body={"name": ""}),
    Route("GET", "/api/v1/orgs/{org_id}", unknown={"org_id": UNKNOWN}, invalid="/api/v1/orgs/x"),
    Route("DELETE", "/api/v1/orgs/{org_id}", unknown={"org_id": UNKNOWN}, invalid="/api/v1/orgs/x"),
    Route("GET", "/api/v1/users"),
    Route("POST", "/api/v1/users", invalid_body={"email": "someone@example.org", "password": "short", "role": "admin"}),
    Route("GET", "/api/v1/users/{user_id}", unknown={"user_id": UNKNOWN}, invalid="/api/v1/users/x"),
    Route(
        "PATCH",
        "/api/v1/users/{user_id}",
        body={},
        unknown={"user_id": UNKNOWN},
        invalid_body={"is_active": "yes please"},
    ),
    Route("GET", "/api/v1/tokens", invalid="/api/v1/tokens?user_id=x"),
    Route("POST", "/api/v1/tokens", invalid_body={"name": ""}),
    Route("DELETE", "/api/v1/tokens/{token_id}", unknown={"token_id": UNKNOWN}, invalid="/api/v1/tokens/x"),
    Route("GET", "/api/v1/audit", invalid="/api/v1/audit?cursor=abc"),
    Route("GET", "/api/v1/jobs", invalid="/api/v1/jobs?status=lost"),
    Route("POST", "/api/v1/jobs/retry", invalid_body={"ids": ["one"]}),
    Route("POST", "/api/v1/jobs/{job_id}/retry", unknown={"job_id": UNKNOWN}, invalid="/api/v1/jobs/x/retry"),
    Route("GET", "/metrics"),
    Route("GET", "/api/v1/monitors", admin_only=False, invalid="/api/v1/monitors?org_id=zero"),
    Route("POST", "/api/v1/monitors", admin_only=False, invalid_body={"name": "m", "query": "(unclosed"}),
    Route(
        "GET",
        "/api/v1/monitors/{monitor_id}",
        admin_only=False,
        unknown={"monitor_id": UNKNOWN},
        invalid="/api/v1/monitors/x",
    ),
    Route(
        "PATCH",
        "/api/v1/monitors/{monitor_id}",
        admin_only=False,
        body={"active": False},
        unknown={"monitor_id": UNKNOWN},
        invalid_body={"digest": "weekly"},
    ),
    Route(
        "DELETE",
        "/api/v1/monitors/{monitor_id}",
        admin_only=False,
        unknown={"monitor_id": UNKNOWN},
        invalid="/api/v1/monitors/-3",
    ),
    Route(
        "GET",
        "/api/v1/monitors/{monitor_id}/matches",
        admin_only=False,
        unknown={"monitor_id": UNKNOWN},
        invalid="/api/v1/monitors/1/matches?limit=0",
    ),
    Route(
        "GET",
        "/api/v1/monitors/{monitor_id}/matches/export",
        admin_only=False,
        unknown={"monitor_id": UNKNOWN},
        invalid="/api/v1/monitors/1/matches/export?format=xml",
    ),
]
PUBLIC = {
    ("GET", "/monitors/{token}.atom"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
}
# The WebSub callback: a hub is no user; the token, the topic and the signature stand for sign-in (test_websub.py).
PUBLIC |= {("GET", "/websub/callback/{token}"), ("POST", "/websub/callback/{token}")}


def _ids(route: Route) -> str:
    return f"{route.method} {route.path}"


def _fill(route: Route, path: str | None = None, **values: str) -> str:
    """The path with real values for its parameters (the nightly-cleanup task, id 1, ...)."""
    defaults = {"name": "nightly-cleanup", **{k: "1" for k in ("task_id", "run_id", "feed_id", "article_id")}}
    defaults.update({k: "1" for k in ("org_id", "user_id", "token_id", "job_id", "monitor_id", "story_id")})
    defaults.update(values)
    return (path or route.path).format(**defaults)


async def _call(client: Any, route: Route, url: str, body: Any = None) -> Any:
    if route.content is not None and body is None:
        return await client.request(route.method, url, content=route.content, headers={"Content-Type": "text/x-opml"})
    payload = body if body is not None else route.body
    if payload is None:
        return await client.request(route.method, url)
    return await client.request(route.method, url, json=payload)


def test_the_table_covers_every_operation(api: ApiEnv) -> None:
    documented = {(m.upper(), p) for p, ops in api.app.openapi()["paths"].items() for m in ops}
    assert documented - PUBLIC == {(r.method, r.path) for r in ROUTES}


@pytest.mark.parametrize("route", ROUTES, ids=_ids)
async def test_401_403_404_422(api: ApiEnv, route: Route) -> None:
    """Each endpoint: no or bad credentials 401; a member 403 (admin-only ones); unknown 404; bad input 422."""
    async with api.client() as client:
        assert_error(await _call(client, route, _fill(route)), 401, "unauthenticated")
    async with api.client(headers={"Authorization": "Bearer not-a-token"}) as client:
        assert_error(await _call(client, route, _fill(route)), 401, "unauthenticated")
    if route.admin_only:
        async with api.member() as client:
            assert_error(await _call(client, route, _fill(route)), 403, "forbidden")
    async with api.admin() as client:
        if route.unknown:
            assert_error(await _call(client, route, _fill(route, **route.unknown)), 404, "not_found")
        if route.invalid or route.invalid_body is not None:
            if route.invalid:
                response = await _call(client, route, _fill(route, route.invalid))
            else:
                response = await _call(client, route, _fill(route), body=route.invalid_body)
            error = assert_error(response, 422, None)
            assert error["code"] in {"invalid", "invalid_opml"}
            assert isinstance(error["details"], list) and error["details"], error
            assert all("field" in d and "message" in d for d in error["details"])
