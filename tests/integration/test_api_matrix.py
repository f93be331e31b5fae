"""Who may call what: every route of the app (API and dashboard pages) for each role, and 401/404/422 for the API.

Two tables, ROUTES (the API) and PAGES (the dashboard), name the roles that may use each route; everyone
else gets a 403. A test walks the app's routes, so a new route without a row here fails. The role
test talks to a real uvicorn on 127.0.0.1; docs/api.md's role table must say the same (test_role_docs.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediabeat.app import create_app
from mediabeat.demo.site import running_demo_site
from mediabeat.domain.access import ROLE_PERMISSIONS, Permission
from mediabeat.domain.content import Role
from tests.integration.api_fixtures import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    MEMBER_EMAIL,
    MEMBER_PASSWORD,
    OPERATOR_EMAIL,
    OPERATOR_PASSWORD,
    ApiEnv,
    assert_error,
)

UNKNOWN = "999999"
ADMIN = frozenset({Role.ADMIN})
STAFF = frozenset({Role.ADMIN, Role.OPERATOR})  # the scheduler and the crawl queue
CONTENT = frozenset({Role.ADMIN, Role.MEMBER})  # organisations' feeds, articles, stories, monitors
ANYONE = frozenset(Role)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    roles: frozenset[Role] = ADMIN  # who may: everyone else gets 403
    body: Any = None  # a valid body, so that 404 is about the id
    content: bytes | None = None
    unknown: dict[str, str] = field(default_factory=dict)  # path values that do not exist: expect 404
    invalid: str | None = None  # a path (with query) that is invalid input: expect 422
    invalid_body: Any = None  # or a body that is invalid input


ROUTES = [
    Route("GET", "/api/v1/auth/me", roles=ANYONE),
    Route(
        "POST",
        "/api/v1/auth/password",
        roles=ANYONE,
        body={"current_password": "wrong-password-1", "new_password": "another-password-2"},
        invalid_body={"current_password": "", "new_password": "another-password-2"},
    ),
    Route("GET", "/api/v1/scheduler/tasks", roles=STAFF),
    Route("POST", "/api/v1/scheduler/tasks", invalid_body={"name": "Bad Name!", "handler": "x", "cron": "* * *"}),
    Route(
        "GET",
        "/api/v1/scheduler/tasks/{task_id}",
        roles=STAFF,
        unknown={"task_id": UNKNOWN},
        invalid="/api/v1/scheduler/tasks/abc",
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
        roles=STAFF,
        unknown={"task_id": UNKNOWN},
        invalid_body={"enabled": "sometimes"},
    ),
    Route(
        "GET",
        "/api/v1/scheduler/tasks/{task_id}/upcoming",
        roles=STAFF,
        unknown={"task_id": UNKNOWN},
        invalid="/api/v1/scheduler/tasks/{task_id}/upcoming?count=0",
    ),
    Route(
        "GET",
        "/api/v1/scheduler/tasks/{task_id}/alerts",
        roles=STAFF,
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
        roles=STAFF,
        unknown={"name": "no-such-task"},
        invalid="/api/v1/scheduler/tasks/{name}/run?wait=perhaps",
    ),
    Route("GET", "/api/v1/scheduler/runs", roles=STAFF, invalid="/api/v1/scheduler/runs?limit=501"),
    Route(
        "GET",
        "/api/v1/scheduler/runs/{run_id}",
        roles=STAFF,
        unknown={"run_id": UNKNOWN},
        invalid="/api/v1/scheduler/runs/x",
    ),
    Route(
        "POST",
        "/api/v1/scheduler/runs/{run_id}/cancel",
        roles=STAFF,
        unknown={"run_id": UNKNOWN},
        invalid="/api/v1/scheduler/runs/0/cancel",
    ),
    Route(
        "GET",
        "/api/v1/scheduler/runs/{run_id}/logs",
        roles=STAFF,
        unknown={"run_id": UNKNOWN},
        invalid="/api/v1/scheduler/runs/x/logs",
    ),
    Route("GET", "/api/v1/scheduler/pause", roles=STAFF),
    Route("POST", "/api/v1/scheduler/pause", roles=STAFF, invalid_body={"reason": "x" * 501}),
    Route("POST", "/api/v1/scheduler/resume", roles=STAFF),
    Route("GET", "/api/v1/scheduler/stats", roles=STAFF),
    Route("GET", "/api/v1/scheduler/handlers", roles=STAFF),
    Route(
        "GET", "/api/v1/scheduler/cron/preview", roles=STAFF, invalid="/api/v1/scheduler/cron/preview?cron=0+0+32+*+*"
    ),
    Route("GET", "/api/v1/scheduler/nodes", roles=STAFF),
    Route("GET", "/api/v1/feeds", roles=ANYONE, invalid="/api/v1/feeds?active=maybe"),
    Route("POST", "/api/v1/feeds", roles=CONTENT, invalid_body={"url": "ftp://example.org/feed"}),
    Route("GET", "/api/v1/feeds/export", roles=CONTENT, invalid="/api/v1/feeds/export?org_id=zero"),
    Route(
        "POST",
        "/api/v1/feeds/import",
        roles=CONTENT,
        content=b"<opml><body/></opml>",
        invalid="/api/v1/feeds/import?org_id=-1",
    ),
    Route("GET", "/api/v1/feeds/{feed_id}", roles=ANYONE, unknown={"feed_id": UNKNOWN}, invalid="/api/v1/feeds/1.5"),
    Route(
        "POST",
        "/api/v1/feeds/{feed_id}/fetch",
        roles=CONTENT,
        unknown={"feed_id": UNKNOWN},
        invalid="/api/v1/feeds/x/fetch",
    ),
    Route(
        "PATCH",
        "/api/v1/feeds/{feed_id}",
        roles=CONTENT,
        body={"active": False},
        unknown={"feed_id": UNKNOWN},
        invalid_body={"active": None},
    ),
    Route("DELETE", "/api/v1/feeds/{feed_id}", roles=CONTENT, unknown={"feed_id": UNKNOWN}, invalid="/api/v1/feeds/-3"),
    Route("GET", "/api/v1/articles", roles=CONTENT, invalid="/api/v1/articles?limit=0"),
    Route("GET", "/api/v1/articles/export", roles=CONTENT, invalid="/api/v1/articles/export?q=%22open"),
    Route(
        "GET",
        "/api/v1/articles/{article_id}",
        roles=CONTENT,
        unknown={"article_id": UNKNOWN},
        invalid="/api/v1/articles/x",
    ),
    Route("GET", "/api/v1/stories", roles=CONTENT, invalid="/api/v1/stories?limit=0"),
    Route(
        "GET",
        "/api/v1/stories/{story_id}",
        roles=CONTENT,
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
    Route("GET", "/api/v1/jobs", roles=STAFF, invalid="/api/v1/jobs?status=lost"),
    Route("POST", "/api/v1/jobs/retry", roles=STAFF, invalid_body={"ids": ["one"]}),
    Route(
        "POST",
        "/api/v1/jobs/{job_id}/retry",
        roles=STAFF,
        unknown={"job_id": UNKNOWN},
        invalid="/api/v1/jobs/x/retry",
    ),
    Route("GET", "/metrics", roles=STAFF),
    Route("GET", "/api/v1/monitors", roles=CONTENT, invalid="/api/v1/monitors?org_id=zero"),
    Route("POST", "/api/v1/monitors", roles=CONTENT, invalid_body={"name": "m", "query": "(unclosed"}),
    Route(
        "GET",
        "/api/v1/monitors/{monitor_id}",
        roles=CONTENT,
        unknown={"monitor_id": UNKNOWN},
        invalid="/api/v1/monitors/x",
    ),
    Route(
        "PATCH",
        "/api/v1/monitors/{monitor_id}",
        roles=CONTENT,
        body={"active": False},
        unknown={"monitor_id": UNKNOWN},
        invalid_body={"digest": "weekly"},
    ),
    Route(
        "DELETE",
        "/api/v1/monitors/{monitor_id}",
        roles=CONTENT,
        unknown={"monitor_id": UNKNOWN},
        invalid="/api/v1/monitors/-3",
    ),
    Route(
        "GET",
        "/api/v1/monitors/{monitor_id}/matches",
        roles=CONTENT,
        unknown={"monitor_id": UNKNOWN},
        invalid="/api/v1/monitors/1/matches?limit=0",
    ),
    Route(
        "GET",
        "/api/v1/monitors/{monitor_id}/matches/export",
        roles=CONTENT,
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


def app_routes(routes: Iterable[Any]) -> Iterator[tuple[str, str, bool]]:
    """Every (method, path, in the OpenAPI schema) the app answers, routers included in routers too."""
    for route in routes:
        nested = getattr(route, "effective_route_contexts", None)  # FastAPI >= 0.165 keeps included routers
        if nested is not None:
            yield from app_routes(nested())
        elif getattr(route, "methods", None) and getattr(route, "path", None):
            for method in route.methods - {"HEAD"}:
                yield method, route.path, bool(getattr(route, "include_in_schema", True))


@dataclass(frozen=True)
class Page:
    method: str
    path: str
    roles: frozenset[Role]


SIGNED_IN = ANYONE
PAGES = [
    Page("GET", "/app", SIGNED_IN),
    Page("GET", "/app/", SIGNED_IN),
    Page("GET", "/app/account", SIGNED_IN),
    Page("GET", "/app/admin", STAFF),
    Page("GET", "/app/admin/", STAFF),
    Page("GET", "/app/admin/scheduler", STAFF),
    Page("GET", "/app/admin/scheduler/runs", STAFF),
    Page("GET", "/app/admin/scheduler/runs/{run_id}", STAFF),
    Page("GET", "/app/admin/scheduler/tasks/{name}", STAFF),
    Page("GET", "/app/admin/scheduler/new", ADMIN),
    Page("GET", "/app/admin/feeds", STAFF),
    Page("GET", "/app/admin/jobs", STAFF),
    Page("GET", "/app/feeds", SIGNED_IN),  # admins and operators are sent on to /app/admin/feeds
    Page("GET", "/app/articles", CONTENT),
    Page("GET", "/app/articles/{article_id}", CONTENT),
    Page("GET", "/app/monitors", CONTENT),
    Page("POST", "/app/monitors", CONTENT),
    Page("GET", "/app/monitors/{monitor_id}", CONTENT),
    Page("POST", "/app/monitors/{monitor_id}/delete", CONTENT),
    Page("POST", "/app/monitors/{monitor_id}/feed-url", CONTENT),
    Page("GET", "/app/stories", CONTENT),
    Page("GET", "/app/stories/{story_id}", CONTENT),
    Page("GET", "/app/admin/users", ADMIN),
    Page("GET", "/app/admin/tokens", ADMIN),
    Page("GET", "/app/admin/audit", ADMIN),
]
# Pages anyone may open, signed in or not.
PUBLIC_PAGES = {("GET", "/"), ("GET", "/login"), ("GET", "/docs"), ("GET", "/redoc"), ("GET", "/openapi.json")}
CREDENTIALS = {
    Role.ADMIN: (ADMIN_EMAIL, ADMIN_PASSWORD),
    Role.OPERATOR: (OPERATOR_EMAIL, OPERATOR_PASSWORD),
    Role.MEMBER: (MEMBER_EMAIL, MEMBER_PASSWORD),
}


def test_the_tables_cover_every_route_of_the_app(api: ApiEnv) -> None:
    documented = {(m.upper(), p) for p, ops in api.app.openapi()["paths"].items() for m in ops}
    assert documented - PUBLIC == {(r.method, r.path) for r in ROUTES}
    answered = {(method, path) for method, path, _ in app_routes(api.app.routes)}
    tabled = {(r.method, r.path) for r in ROUTES} | {(p.method, p.path) for p in PAGES}
    assert answered - PUBLIC - PUBLIC_PAGES == tabled
    assert len(ROUTES) + len(PAGES) == len(tabled), "a route is in the tables twice"


@pytest.fixture
def served(api: ApiEnv) -> Iterator[str]:
    """The app on a real uvicorn at 127.0.0.1 (its own services, the same database as `api` and its users)."""
    with running_demo_site(create_app(api.services.settings), lifespan=True) as urls:
        yield urls[0]


async def _allowed_call(client: httpx.AsyncClient, route: Route) -> httpx.Response:
    """A call the role may make: about an unknown id where the route takes one, so nothing real changes."""
    return await _call(client, route, _fill(route, **route.unknown))


async def test_each_role_may_use_exactly_the_api_routes_the_table_gives_it(api: ApiEnv, served: str) -> None:
    wrong: list[str] = []
    for role in Role:
        headers = {"Authorization": f"Bearer {api.token_of(role)}"}
        async with httpx.AsyncClient(base_url=served, headers=headers, timeout=60) as client:
            for route in ROUTES:
                response = await _allowed_call(client, route)
                refused = response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
                if refused == (role in route.roles) or response.status_code in (401, 500):
                    wrong.append(f"{role} {route.method} {route.path}: {response.status_code} {response.text[:120]}")
                elif refused:
                    assert f"{role}s may not" in response.json()["error"]["message"]
    assert wrong == []


async def _page_call(client: httpx.AsyncClient, page: Page, csrf: str) -> httpx.Response:
    ids = {k: UNKNOWN for k in ("run_id", "article_id", "monitor_id", "story_id")}
    path = page.path.format(name="nightly-cleanup", **ids)
    if page.method == "POST":
        return await client.post(path, data={"csrf_token": csrf})
    return await client.get(path)


async def test_each_role_may_open_exactly_the_pages_the_table_gives_it(api: ApiEnv, served: str) -> None:
    wrong: list[str] = []
    for role, (email, password) in CREDENTIALS.items():
        async with httpx.AsyncClient(base_url=served, timeout=60) as client:
            signed = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
            assert signed.status_code == 200, signed.text
            for page in PAGES:
                response = await _page_call(client, page, signed.json()["csrf_token"])
                refused = response.status_code == 403
                if refused == (role in page.roles) or response.status_code >= 500:
                    wrong.append(f"{role} {page.method} {page.path}: {response.status_code}")
                elif refused:
                    assert f"{role}s may not" in response.text and email in response.text
    assert wrong == []


@pytest.mark.parametrize("route", ROUTES, ids=_ids)
async def test_401_403_404_422(api: ApiEnv, route: Route) -> None:
    """Each endpoint: no or bad credentials 401; a role the table leaves out 403; unknown 404; bad input 422."""
    async with api.client() as client:
        assert_error(await _call(client, route, _fill(route)), 401, "unauthenticated")
    async with api.client(headers={"Authorization": "Bearer not-a-token"}) as client:
        assert_error(await _call(client, route, _fill(route)), 401, "unauthenticated")
    for role in set(Role) - route.roles:
        async with api.client(api.token_of(role)) as client:
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


DOCS = Path(__file__).resolve().parents[2]
ROLE_COLUMNS = (Role.MEMBER, Role.OPERATOR, Role.ADMIN)


def _ticks(cells: list[str]) -> frozenset[Role]:
    assert all(c in ("✓", "–") for c in cells), cells
    return frozenset(role for role, cell in zip(ROLE_COLUMNS, cells, strict=True) if cell == "✓")


def test_the_role_tables_in_the_docs_say_what_the_code_does() -> None:
    """docs/api.md's route-by-route table is ROUTES and PAGES; README's permission table is ROLE_PERMISSIONS."""
    api_rows = re.findall(r"^\| `([A-Z]+) (/[^`]*)` \| (.) \| (.) \| (.) \|$", (DOCS / "docs/api.md").read_text(), re.M)
    documented = {(method, path): _ticks(list(cells)) for method, path, *cells in api_rows}
    assert len(documented) == len(api_rows), "a route is in docs/api.md's role table twice"
    assert documented == {(r.method, r.path): r.roles for r in [*ROUTES, *PAGES]}
    readme_rows = re.findall(
        r"^\| [^|]+ \| `([a-z_]+)` \| (.) \| (.) \| (.) \|$", (DOCS / "README.md").read_text(), re.M
    )
    permitted = {Permission(name): _ticks(list(cells)) for name, *cells in readme_rows}
    assert permitted == {p: frozenset(r for r in Role if p in ROLE_PERMISSIONS[r]) for p in Permission}
