"""The dashboard for an operator: the scheduler and the crawl queue with their switches, no definitions, no accounts."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx

from mediabeat.db.stores.jobs import JobStore, NewJob
from mediabeat.scheduler.service import NewTask
from mediabeat.testing import BlockingHandler
from tests.integration.api_fixtures import OPERATOR_EMAIL, OPERATOR_PASSWORD, ApiEnv

OPERATOR_NAV = ["/app/admin/scheduler", "/app/admin/scheduler/runs", "/app/admin/feeds", "/app/admin/jobs"]


@contextlib.asynccontextmanager
async def operator_session(api: ApiEnv) -> AsyncIterator[httpx.AsyncClient]:
    """The operator's browser: the session cookie, and the CSRF token dashboard.js sends with every change."""
    async with api.client() as client:
        response = await client.post(
            "/api/v1/auth/login", json={"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD}
        )
        assert response.status_code == 200, response.text
        assert response.json()["user"]["role"] == "operator"
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


def nav_links(html: str) -> list[str]:
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, flags=re.DOTALL)
    assert nav, "no main navigation"
    return [href for href in re.findall(r'href="([^"]+)"', nav.group(1)) if href != "/app/account"]


async def test_an_operator_is_sent_to_the_scheduler_and_sees_only_the_pages_they_may_use(api: ApiEnv) -> None:
    async with operator_session(api) as client:
        home = await client.get("/")
        assert home.status_code in (302, 303, 307) and home.headers["location"] == "/app/admin/scheduler"
        html = (await client.get("/app/admin/scheduler")).text
        assert nav_links(html) == OPERATOR_NAV
        assert 'class="brand-sub">operator<' in html
        for refused in ("/app/admin/users", "/app/admin/tokens", "/app/admin/audit", "/app/articles"):
            page = await client.get(refused)
            assert page.status_code == 403, refused
            assert "operators may not" in page.text and OPERATOR_EMAIL in page.text
            assert "back to the scheduler" in page.text
        moved = await client.get("/app/feeds")
        assert moved.status_code == 303 and moved.headers["location"] == "/app/admin/feeds"


async def test_the_scheduler_page_gives_an_operator_run_switch_and_pause_but_no_new_task(api: ApiEnv) -> None:
    async with operator_session(api) as client:
        html = (await client.get("/app/admin/scheduler")).text
        tasks = len(re.findall(r"<tr data-task-id=", html))
        assert tasks >= 3  # the built-in tasks
        assert html.count('data-action="run-now"') == tasks and html.count('data-action="toggle"') == tasks
        assert 'data-action="scheduler-pause"' in html
        assert "/app/admin/scheduler/new" not in html
        # What those buttons send, the operator may do: pause (then the page offers resume), run, switch off.
        paused = await client.post("/api/v1/scheduler/pause", json={"reason": "maintenance"})
        assert paused.status_code == 200 and paused.json()["changed_by"] == OPERATOR_EMAIL
        html = (await client.get("/app/admin/scheduler")).text
        assert 'data-action="scheduler-resume"' in html and "paused by operator@example.test" in html
        assert (await client.post("/api/v1/scheduler/resume")).status_code == 200
        ran = await client.post("/api/v1/scheduler/tasks/nightly-cleanup/run", params={"wait": "true"})
        assert ran.status_code == 200 and ran.json()["triggered_by"] == OPERATOR_EMAIL
        task_id = ran.json()["task_id"]
        toggled = await client.post(f"/api/v1/scheduler/tasks/{task_id}/toggle", json={"enabled": False})
        assert toggled.status_code == 200 and toggled.json()["enabled"] is False
        # ... and what the hidden forms would send, they may not.
        edit = await client.patch(f"/api/v1/scheduler/tasks/{task_id}", json={"cron": "5 * * * *"})
        assert edit.status_code == 403 and "operators may not create, change or delete tasks" in edit.text


async def test_the_task_page_shows_an_operator_the_settings_without_the_form(api: ApiEnv) -> None:
    async with operator_session(api) as client:
        html = (await client.get("/app/admin/scheduler/tasks/nightly-cleanup")).text
        assert 'id="task-settings"' in html and "0 0 * * *" in html
        assert 'id="task-form"' not in html and 'data-action="delete-task"' not in html
        assert 'data-action="run-now"' in html and 'data-action="toggle"' in html
        assert (await client.get("/app/admin/scheduler/new")).status_code == 403


async def test_feeds_and_jobs_pages_show_an_operator_every_organisation_with_retry_but_no_feed_forms(
    api: ApiEnv,
) -> None:
    async with api.admin() as admin:
        for org_id, url in ((api.org_id, "https://one.example.org/rss"), (api.other_org_id, "https://two.example/rss")):
            created = await admin.post("/api/v1/feeds", json={"url": url, "org_id": org_id, "check": False})
            assert created.status_code == 201, created.text
    jobs = JobStore(api.services.db)
    now = api.services.clock.now()
    await jobs.enqueue([NewJob(api.org_id, None, "https://one.example.org/a", "b" * 64)], now=now)
    claimed = await jobs.claim(worker="w", now=now, limit=1, lease=timedelta(minutes=1))
    await jobs.fail(claimed[0].id, worker="w", now=now, error="HTTP 500")
    async with operator_session(api) as client:
        feeds = (await client.get("/app/admin/feeds")).text
        assert "https://one.example.org/rss" in feeds and "https://two.example/rss" in feeds
        assert "api-org" in feeds and "other-org" in feeds
        for control in ('id="feed-form"', 'id="opml-form"', 'data-action="feed-toggle"', 'data-action="feed-fetch"'):
            assert control not in feeds, control
        assert 'data-action-change="feed-priority"' not in feeds and "opml-export" not in feeds
        listed = await client.get("/api/v1/feeds")
        assert listed.status_code == 200 and len(listed.json()["items"]) == 2
        added = await client.post("/api/v1/feeds", json={"url": "https://three.example/rss", "check": False})
        assert added.status_code == 403
        jobs_page = (await client.get("/app/admin/jobs", params={"status": "failed"})).text
        assert "https://one.example.org/a" in jobs_page
        assert 'data-action="retry-job"' in jobs_page and 'data-action="retry-all"' in jobs_page
        retried = await client.post(f"/api/v1/jobs/{claimed[0].id}/retry")
        assert retried.status_code == 200 and retried.json() == {"requeued": 1}


async def test_an_operator_cancels_a_running_run_from_its_page(api: ApiEnv) -> None:
    blocking = BlockingHandler()
    api.services.registry.register("blocking", blocking)
    try:
        await api.services.scheduler.create_task(NewTask(name="slow-one", handler="blocking", cron="@daily"))
        async with operator_session(api) as client:
            started = await client.post("/api/v1/scheduler/tasks/slow-one/run")
            assert started.status_code == 202, started.text
            run_id = started.json()["id"]
            await blocking.started.wait()
            page = (await client.get(f"/app/admin/scheduler/runs/{run_id}")).text
            assert f'data-action="cancel-run" data-run-id="{run_id}"' in page
            cancelled = await client.post(f"/api/v1/scheduler/runs/{run_id}/cancel")
            assert cancelled.status_code == 202 and cancelled.json()["cancelled_by"] == OPERATOR_EMAIL
            await api.services.scheduler.wait_idle(within=5)
            page = (await client.get(f"/app/admin/scheduler/runs/{run_id}")).text
            assert f"Cancelled by {OPERATOR_EMAIL}" in page and 'data-action="cancel-run"' not in page
    finally:
        blocking.release()
