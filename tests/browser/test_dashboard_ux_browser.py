"""The dashboard for a new user in a real browser: the front door, the first password, local time, the dark and
phone layouts, human labels, the duration chart, OPML export and the pages that update themselves."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from mediabeat.crawler.urls import url_hash
from mediabeat.db.tables import media_crawl_jobs, organizations, scheduler_task_runs, users
from tests.browser.conftest import ADMIN, LiveServer, _cli
from tests.browser.test_dashboard_browser import create_task, sign_in

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]

FIRST_ADMIN = ("first@browser.test", "generated-browser-pass-1")
NEW_PASSWORD = "my-own-browser-pass-22"
LIVE_WAIT_MS = 15_000  # the pages poll every few seconds


def run_task(server: LiveServer, name: str, times: int = 1) -> list[dict[str, object]]:
    runs = []
    with server.api() as api:
        for _ in range(times):
            response = api.post(f"/api/v1/scheduler/tasks/{name}/run", params={"wait": "true"})
            assert response.status_code == 200, response.text
            runs.append(response.json())
    return runs


def test_the_front_door_error_pages_and_a_first_password(
    page: Page, live_server: LiveServer, screenshots: Path
) -> None:
    email, password = FIRST_ADMIN
    _cli(
        live_server.env,
        "users",
        "create",
        email,
        "--role",
        "admin",
        "--org",
        "newsroom",
        "--password-stdin",
        stdin=password,
    )
    engine = sa.create_engine(live_server.env["MEDIABEAT_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(users.update().where(users.c.email == FIRST_ADMIN[0]).values(must_change_password=True))
    engine.dispose()
    page.goto(live_server.url + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Email").fill(FIRST_ADMIN[0])
    page.get_by_label("Password").fill(FIRST_ADMIN[1])
    page.get_by_role("button", name="Sign in").click()
    # Asked for a new password before anything else, then taken where they were going.
    expect(page).to_have_url(re.compile(r"/app/account\?next=/app/admin/scheduler"))
    expect(page.locator("#must-change")).to_be_visible()
    page.get_by_label("Current password").fill(FIRST_ADMIN[1])
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD + "x")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator('[data-error-for="repeat_password"]')).to_have_text("The two new passwords differ.")
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.screenshot(path=str(screenshots / "account.png"), full_page=True)
    page.get_by_role("button", name="Change password").click()
    expect(page).to_have_title("Scheduler · MediaBeat")
    page.goto(live_server.url + "/app")
    expect(page).to_have_url(live_server.url + "/app/admin/scheduler")
    # The signed-in session's CSRF token was renewed with the password: mutations still work.
    page.goto(live_server.url + "/no/such/page")
    expect(page).to_have_title("Not found · MediaBeat")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.screenshot(path=str(screenshots / "not-found.png"))
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Email").fill(FIRST_ADMIN[0])
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_title("Scheduler · MediaBeat")


def add_history(server: LiveServer, task_id: int, hours: int = 6) -> None:
    """Past runs, one every half hour, straight into the database: a chart needs time between its runs."""
    engine = sa.create_engine(server.env["MEDIABEAT_DATABASE_URL"])
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for n in range(hours * 2):
            started = now - timedelta(minutes=30 * (hours * 2 - n) + 7)
            took = 800 + (n * 937) % 4000
            status = "failed" if n in (3, 8) else "succeeded"
            conn.execute(
                scheduler_task_runs.insert().values(
                    task_id=task_id,
                    trigger="manual",
                    scheduled_for=started,
                    started_at=started,
                    finished_at=started + timedelta(milliseconds=took),
                    duration_ms=took,
                    status=status,
                    error="the feed server answered 503" if status == "failed" else None,
                    result={"fetched": n, "not_modified": 2} if status == "succeeded" else None,
                    triggered_by=ADMIN[0],
                )
            )
    engine.dispose()


def test_times_are_local_with_utc_on_hover(browser: Browser, live_server: LiveServer) -> None:
    create_task(live_server, "local-time", "counting")
    run = run_task(live_server, "local-time")[0]
    started = datetime.fromisoformat(str(run["started_at"]).replace("Z", "+00:00"))
    context = browser.new_context(timezone_id="Asia/Tokyo", viewport={"width": 1366, "height": 900})
    page = context.new_page()
    sign_in(page, live_server, path=f"/app/admin/scheduler/runs/{run['id']}")
    tokyo = (started + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M:%S")
    local = page.locator("time[data-local]").nth(1)  # started
    expect(local).to_contain_text(tokyo)
    expect(local).to_have_attribute("title", started.strftime("%Y-%m-%d %H:%M:%S UTC"))
    relative = page.locator("time[data-relative]").nth(1)
    expect(relative).to_have_attribute("title", re.compile(re.escape(tokyo) + r".*\(.* UTC\)"))
    # The run filters take local times too; the address keeps UTC, which the server reads.
    page.goto(live_server.url + "/app/admin/scheduler/runs?since=2026-01-01T00:00")
    expect(page.get_by_label("From")).to_have_value("2026-01-01T09:00")
    expect(page.locator("#filter-zone")).to_contain_text("your time zone")
    page.get_by_label("Until").fill("2026-01-02T09:30")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"since=2026-01-01T00%3A00&until=2026-01-02T00%3A30"))
    expect(page.get_by_label("Until")).to_have_value("2026-01-02T09:30")
    context.close()


def test_labels_for_people_and_the_chart_on_a_time_axis(page: Page, live_server: LiveServer, screenshots: Path) -> None:
    add_history(live_server, create_task(live_server, "counted", "counting"))
    runs = run_task(live_server, "counted", times=2)
    sign_in(page, live_server, path=f"/app/admin/scheduler/runs/{runs[-1]['id']}")
    result = page.locator("#run-result")
    expect(result).to_contain_text("Not modified")
    expect(result).to_contain_text("Crawl jobs created")
    expect(result).to_contain_text("Blocked address")
    expect(result).to_contain_text("HTTP 503")
    expect(result).not_to_contain_text("{")
    expect(result).not_to_contain_text("_")
    expect(page.locator("main")).not_to_contain_text("Not_modified")
    page.screenshot(path=str(screenshots / "run-result.png"), full_page=True)
    page.goto(live_server.url + "/app/admin/scheduler/tasks/counted")
    chart = page.locator("#duration-chart")
    expect(chart.locator("text.axis-time").first).to_have_text(re.compile(r"^\d\d:\d\d$"))
    assert chart.locator("text.axis-time").count() >= 2
    bars = chart.locator("rect.bar")
    xs = [float(bars.nth(i).get_attribute("x") or 0) for i in range(bars.count())]
    assert len(xs) == 14 and xs == sorted(xs)
    gaps = [b - a for a, b in itertools.pairwise(xs)]
    assert gaps[-1] < 1 < min(gaps[:-2])  # half-hourly runs spread out; the two runs of just now side by side
    chart.locator("a.bar-link").last.hover()
    tip = page.locator("#chart-tip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text(f"Run {runs[-1]['id']}: Succeeded")
    expect(tip).to_contain_text("UTC")
    page.screenshot(path=str(screenshots / "task-chart.png"))


def test_feeds_export_as_opml(page: Page, live_server: LiveServer) -> None:
    with live_server.api() as api:
        org_id = api.get("/api/v1/orgs").json()["items"][0]["id"]
        added = api.post(
            "/api/v1/feeds", json={"url": "https://export.example.org/rss.xml", "org_id": org_id, "check": False}
        )
        assert added.status_code in (200, 201), added.text
    sign_in(page, live_server, path="/app/admin/feeds")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export OPML").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".opml")
    assert "https://export.example.org/rss.xml" in Path(download.path()).read_text()


def test_runs_feeds_and_jobs_update_while_open(page: Page, live_server: LiveServer) -> None:
    create_task(live_server, "live-runs", "counting")
    sign_in(page, live_server, path="/app/admin/scheduler/runs")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "up", timeout=LIVE_WAIT_MS)
    run = run_task(live_server, "live-runs")[0]
    expect(page.get_by_role("link", name=f"#{run['id']}")).to_be_visible(timeout=LIVE_WAIT_MS)

    page.goto(live_server.url + "/app/admin/feeds")
    with live_server.api() as api:
        org_id = api.get("/api/v1/orgs").json()["items"][0]["id"]
        api.post("/api/v1/feeds", json={"url": "https://live.example.org/feed.xml", "org_id": org_id, "check": False})
    expect(page.locator("tr[data-feed-id]", has_text="https://live.example.org/feed.xml")).to_have_count(
        1, timeout=LIVE_WAIT_MS
    )

    page.goto(live_server.url + "/app/admin/jobs")
    queued = page.locator('[data-job-count="queued"]')
    before = int(queued.inner_text())
    engine = sa.create_engine(live_server.env["MEDIABEAT_DATABASE_URL"])
    now = datetime.now(UTC)
    with engine.begin() as conn:
        org = conn.execute(sa.select(organizations.c.id).where(organizations.c.name == "newsroom")).scalar_one()
        url = "https://live.example.org/story.html"
        conn.execute(
            media_crawl_jobs.insert().values(
                org_id=org, url=url, url_hash=url_hash(url), run_after=now, created_at=now, updated_at=now
            )
        )
    engine.dispose()
    expect(queued).to_have_text(str(before + 1), timeout=LIVE_WAIT_MS)
    expect(page.locator("tr[data-job-id]", has_text=url)).to_have_count(1, timeout=LIVE_WAIT_MS)


def test_dark_and_phone_layouts(browser: Browser, live_server: LiveServer, screenshots: Path) -> None:
    add_history(live_server, create_task(live_server, "layout-ok", "counting"))
    create_task(live_server, "layout-fails", "always_fails")
    run_task(live_server, "layout-ok", times=3)
    run_task(live_server, "layout-fails")
    dark = browser.new_context(color_scheme="dark", viewport={"width": 1366, "height": 900}, timezone_id="UTC")
    page = dark.new_page()
    sign_in(page, live_server)
    expect(page).to_have_title("Scheduler · MediaBeat")
    background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    assert background == "rgb(11, 17, 32)", background
    page.screenshot(path=str(screenshots / "scheduler-dark.png"), full_page=True)
    page.goto(live_server.url + "/app/admin/scheduler/tasks/layout-ok")
    page.screenshot(path=str(screenshots / "task-dark.png"), full_page=True)
    dark.close()

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    sign_in(page, live_server)
    expect(page).to_have_title("Scheduler · MediaBeat")
    links = page.get_by_role("navigation", name="Main").get_by_role("link")
    expect(links).to_have_text(
        [
            "Scheduler",
            "Runs",
            "Feeds",
            "Crawl jobs",
            "Articles",
            "Monitors",
            "Stories",
            "Users",
            "API tokens",
            "Audit log",
            "Account",
        ]
    )
    for i in range(links.count()):
        box = links.nth(i).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, links.nth(i).inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    links.get_by_text("Runs").click()
    expect(page).to_have_title("Run history · MediaBeat")
    page.screenshot(path=str(screenshots / "runs-phone.png"))
    page.goto(live_server.url + "/app/admin/feeds")
    page.screenshot(path=str(screenshots / "feeds-phone.png"))
    phone.close()


def test_the_new_pages_keep_the_content_security_policy(browser: Browser, live_server: LiveServer) -> None:
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    sign_in(page, live_server, ADMIN)
    for path in ("/app/account", "/app/admin/scheduler/tasks/nightly-cleanup", "/app/admin/jobs"):
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
    context.close()
    assert problems == []
