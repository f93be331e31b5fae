"""The dashboard in a real browser: sign-in, cards, toggling, Run Now, failures, editing, access, reading articles."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from mediabeat.crawler.urls import url_hash
from mediabeat.db.tables import articles, organizations
from tests.browser.conftest import ADMIN, MEMBER, LiveServer
from tests.browser.serve_app import FAILURE_MESSAGE

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]

CARDS = {
    "Total Tasks": "total_tasks",
    "Enabled": "enabled_tasks",
    "Runs": "total_runs",
    "Success": "succeeded_runs",
    "Failed": "failed_runs",
    "Last 24h": "runs_last_24h",
}


def sign_in(page: Page, server: LiveServer, who: tuple[str, str] = ADMIN, path: str = "/app/admin/scheduler") -> None:
    page.goto(server.url + path)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Email").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    page.get_by_role("button", name="Sign in").click()
    # The sign-in's redirect must land before the caller navigates: a goto while it is in flight aborts one
    # of the two (net::ERR_ABORTED).
    expect(page).not_to_have_url(re.compile(r"/login"))
    page.wait_for_load_state()


def create_task(server: LiveServer, name: str, handler: str, cron: str = "0 3 * * *", **extra: object) -> int:
    with server.api() as api:
        body = {"name": name, "handler": handler, "cron": cron, "description": f"{name} for the browser tests", **extra}
        response = api.post("/api/v1/scheduler/tasks", json=body)
        assert response.status_code == 201, response.text
        task_id: int = response.json()["id"]
        return task_id


def row(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(f'tr[data-task-name="{name}"]')


def confirm(page: Page, title: str) -> None:
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_have_text(title)
    dialog.locator("#confirm-ok").click()
    expect(dialog).to_be_hidden()


def test_signing_in_takes_the_admin_to_the_page_they_asked_for(
    page: Page, live_server: LiveServer, screenshots: Path
) -> None:
    page.goto(live_server.url + "/app/admin/scheduler/runs")
    expect(page).to_have_url(re.compile(r"/login\?next=/app/admin/scheduler/runs"))
    expect(page).to_have_title("Sign in · MediaBeat")
    page.get_by_label("Email").fill(ADMIN[0])
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_be_visible()
    expect(page.locator("#login-error")).to_contain_text("password")
    page.screenshot(path=str(screenshots / "login.png"))
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server.url + "/app/admin/scheduler/runs")
    expect(page).to_have_title("Run history · MediaBeat")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_the_six_cards_show_the_right_numbers(page: Page, live_server: LiveServer, screenshots: Path) -> None:
    create_task(live_server, "cards-ok", "nightly_cleanup")
    create_task(live_server, "cards-fail", "always_fails", enabled=False)
    with live_server.api() as api:
        for name in ("cards-ok", "cards-ok", "cards-fail"):
            assert api.post(f"/api/v1/scheduler/tasks/{name}/run", params={"wait": "true"}).status_code == 200
        stats = api.get("/api/v1/scheduler/stats").json()
        tasks = api.get("/api/v1/scheduler/tasks").json()["items"]
    assert stats["succeeded_runs"] >= 2 and stats["failed_runs"] >= 1
    assert stats["enabled_tasks"] == sum(t["enabled"] for t in tasks) < stats["total_tasks"] == len(tasks)
    sign_in(page, live_server)
    expect(page).to_have_title("Scheduler · MediaBeat")
    for label, key in CARDS.items():
        card = page.locator(".card", has=page.locator(".card-label", has_text=re.compile(f"^{label}$")))
        expect(card.locator(".card-value")).to_have_text(str(stats[key]))
    expect(row(page, "cards-ok").locator('[data-field="status"]')).to_have_text("Succeeded")
    expect(row(page, "cards-ok").locator(".tick-good")).to_have_count(2)
    expect(row(page, "cards-ok")).to_contain_text("At 03:00")
    page.screenshot(path=str(screenshots / "scheduler.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator(".card")).to_have_count(6)
    page.screenshot(path=str(screenshots / "scheduler-phone.png"), full_page=True)


def test_toggling_a_task_asks_first_and_updates_in_place(page: Page, live_server: LiveServer) -> None:
    task_id = create_task(live_server, "toggle-me", "nightly_cleanup")
    sign_in(page, live_server)
    switch = row(page, "toggle-me").get_by_role("switch")
    expect(switch).to_have_attribute("aria-checked", "true")
    enabled_before = int(page.locator('[data-stat="enabled_tasks"]').inner_text())
    switch.click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(switch).to_have_attribute("aria-checked", "true")
    page.evaluate("window.__same_document = true")
    switch.click()
    confirm(page, "Disable toggle-me?")
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(switch).to_contain_text("Off")
    expect(row(page, "toggle-me").locator('[data-field="next_run_at"]')).to_have_text("paused")
    expect(page.locator('[data-stat="enabled_tasks"]')).to_have_text(str(enabled_before - 1))
    assert page.evaluate("window.__same_document") is True  # no reload happened
    with live_server.api() as api:
        assert api.get(f"/api/v1/scheduler/tasks/{task_id}").json()["enabled"] is False
    switch.focus()
    page.keyboard.press("Enter")
    confirm(page, "Enable toggle-me?")
    expect(switch).to_have_attribute("aria-checked", "true")


def test_run_now_asks_then_shows_the_run_running_and_then_finished(page: Page, live_server: LiveServer) -> None:
    create_task(live_server, "slow-task", "slow_success")
    sign_in(page, live_server)
    runs_before = int(page.locator('[data-stat="total_runs"]').inner_text())
    row(page, "slow-task").get_by_role("button", name="Run now").click()
    confirm(page, "Run slow-task now?")
    status = row(page, "slow-task").locator('[data-field="status"]')
    expect(status).to_have_text("Running")
    expect(status).to_have_text("Succeeded", timeout=20_000)
    expect(page.locator('[data-stat="total_runs"]')).to_have_text(str(runs_before + 1), timeout=10_000)
    expect(page.locator("#toast")).to_contain_text("succeeded")


def test_a_failing_task_shows_its_error_in_the_banner_badge_and_run_detail(
    page: Page, live_server: LiveServer, screenshots: Path
) -> None:
    create_task(live_server, "broken-feed", "always_fails")
    sign_in(page, live_server)
    row(page, "broken-feed").get_by_role("button", name="Run now").click()
    confirm(page, "Run broken-feed now?")
    banner = page.get_by_role("alert").filter(has_text="broken-feed")
    expect(page.locator("#banner")).to_contain_text(FAILURE_MESSAGE, timeout=20_000)
    expect(row(page, "broken-feed").locator('[data-field="status"] .badge-bad')).to_have_text("Failed")
    page.reload()
    expect(banner.first).to_contain_text(FAILURE_MESSAGE)
    page.get_by_role("link", name="Runs", exact=True).click()
    page.get_by_label("Task").select_option("broken-feed")
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.runs tbody tr")).to_have_count(1)
    expect(page.locator("table.runs")).to_contain_text(FAILURE_MESSAGE)
    page.screenshot(path=str(screenshots / "runs.png"), full_page=True)
    page.locator("table.runs tbody tr a").first.click()
    expect(page).to_have_title(re.compile(r"^Run \d+ of broken-feed"))
    expect(page.get_by_role("alert").filter(has_text="Why it failed")).to_contain_text(FAILURE_MESSAGE)
    expect(page.locator(".traceback:not(.run-log)")).to_contain_text("RuntimeError: " + FAILURE_MESSAGE)
    expect(page.locator(".facts")).to_contain_text(ADMIN[0])
    page.screenshot(path=str(screenshots / "run-detail.png"), full_page=True)


def test_a_bad_cron_shows_the_api_message_beside_the_field(
    page: Page, live_server: LiveServer, screenshots: Path
) -> None:
    task_id = create_task(live_server, "edit-me", "slow_success")
    with live_server.api() as api:
        api.post("/api/v1/scheduler/tasks/edit-me/run", params={"wait": "true"})
    sign_in(page, live_server, path="/app/admin/scheduler/tasks/edit-me")
    expect(page).to_have_title("Task edit-me · MediaBeat")
    expect(page.locator("#upcoming li")).to_have_count(10)
    expect(page.locator("svg rect.bar-good")).to_have_count(1)
    cron = page.get_by_label("Cron expression")
    cron.fill("61 * * * *")
    page.get_by_role("button", name="Save changes").click()
    confirm(page, "Save edit-me?")
    error = page.locator('[data-error-for="cron"]')
    expect(error).to_be_visible()
    expect(error).to_contain_text("61")
    expect(cron).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=str(screenshots / "task-invalid-cron.png"), full_page=True)
    with live_server.api() as api:
        assert api.get(f"/api/v1/scheduler/tasks/{task_id}").json()["cron"] == "0 3 * * *"
    cron.fill("*/15 * * * *")
    page.get_by_role("button", name="Save changes").click()
    confirm(page, "Save edit-me?")
    expect(error).to_be_hidden()
    expect(page.locator("#t-cron-words")).to_have_text(re.compile("Every 15 minutes"))
    expect(page.locator("#t-cron-next")).to_have_text("")
    expect(page.locator("#upcoming li").first).to_contain_text(re.compile(r":(00|15|30|45) "))
    page.screenshot(path=str(screenshots / "task.png"), full_page=True)


def test_creating_a_task_from_a_preset_then_deleting_it(page: Page, live_server: LiveServer, screenshots: Path) -> None:
    sign_in(page, live_server)
    page.get_by_role("link", name="New task").click()
    expect(page).to_have_title("New task · MediaBeat")
    page.get_by_label("What it runs").select_option("nightly_cleanup")
    expect(page.locator("#t-handler-help")).to_contain_text("Delete crawl jobs and run history")
    page.get_by_role("button", name="Weekdays at 09:00").click()
    expect(page.get_by_label("Cron expression")).to_have_value("0 9 * * 1-5")
    expect(page.locator("#t-cron-words")).to_have_text("At 09:00, Monday through Friday")
    expect(page.locator("#t-cron-next")).to_contain_text("Next: ")
    zone = page.get_by_label("Time zone")
    zone.fill("Mars/Base")
    expect(page.locator('[data-error-for="timezone"]')).to_contain_text("unknown time zone")
    expect(zone).to_have_attribute("aria-invalid", "true")
    zone.fill("Europe/Riga")
    expect(page.locator('[data-error-for="timezone"]')).to_be_hidden()
    expect(page.locator("#t-cron-next")).to_contain_text("09:00")
    page.get_by_label("Also run after").select_option("nightly-cleanup")
    page.get_by_label("Description").fill("What changed in the crawl, each weekday morning")
    name = page.get_by_label("Name")
    name.fill("weekday-digest")
    page.screenshot(path=str(screenshots / "task-new.png"), full_page=True)
    name.fill("Weekday Digest")
    page.get_by_role("button", name="Create task").click()
    confirm(page, "Create Weekday Digest?")
    expect(page.locator('[data-error-for="name"]')).to_contain_text("lower-case letters")
    expect(name).to_have_attribute("aria-invalid", "true")
    name.fill("weekday-digest")
    expect(page.locator('[data-error-for="name"]')).to_be_hidden()
    expect(name).not_to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Create task").click()
    confirm(page, "Create weekday-digest?")
    expect(page).to_have_url(live_server.url + "/app/admin/scheduler/tasks/weekday-digest")
    expect(page.locator("#t-upstream")).to_contain_text("runs after nightly-cleanup succeeds")
    expect(page.locator("#upcoming li")).to_have_count(10)
    with live_server.api() as api:
        task = next(t for t in api.get("/api/v1/scheduler/tasks").json()["items"] if t["name"] == "weekday-digest")
    assert (task["cron"], task["timezone"], task["handler"], task["enabled"]) == (
        "0 9 * * 1-5",
        "Europe/Riga",
        "nightly_cleanup",
        True,
    )
    page.get_by_label("Also run after").select_option([])
    page.get_by_role("button", name="Save changes").click()
    confirm(page, "Save weekday-digest?")
    expect(page.locator("#t-upstream")).to_be_hidden()
    page.get_by_role("button", name="Delete task").click()
    confirm(page, "Delete weekday-digest?")
    expect(page).to_have_url(live_server.url + "/app/admin/scheduler")
    expect(row(page, "weekday-digest")).to_have_count(0)
    with live_server.api() as api:
        assert api.get("/api/v1/scheduler/tasks/" + str(task["id"])).status_code == 404


def test_a_member_is_refused(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server, MEMBER)
    # Sent to the articles instead of the admin page they asked for; going there anyway is refused.
    expect(page).to_have_url(re.compile(r"/app/articles$"))
    page.goto(live_server.url + "/app/admin/scheduler")
    expect(page).to_have_title("Not allowed · MediaBeat")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.locator("main")).to_contain_text("members may not see the scheduler")
    assert page.locator('[data-stat="total_tasks"]').count() == 0
    response = page.request.get(live_server.url + "/api/v1/scheduler/stats")
    assert response.status == 403


def test_feeds_and_jobs_pages(page: Page, live_server: LiveServer, screenshots: Path) -> None:
    sign_in(page, live_server, path="/app/admin/feeds")
    expect(page).to_have_title("Feeds · MediaBeat")
    page.get_by_label("Feed URL").fill("not a url")
    page.get_by_role("button", name="Add feed").click()
    confirm(page, "Add this feed?")
    expect(page.locator('[data-error-for="url"]')).to_contain_text("http")
    page.get_by_label("Feed URL").fill("https://news.example.org/world/rss.xml")
    page.get_by_label("Add it without fetching it now").check()  # example.org is not reachable from here
    page.get_by_role("button", name="Add feed").click()
    confirm(page, "Add this feed?")
    feed = page.locator("tr[data-feed-id]", has_text="https://news.example.org/world/rss.xml")
    expect(feed).to_have_count(1)
    feed.get_by_role("switch").click()
    confirm(page, "Disable this feed?")
    expect(feed.get_by_role("switch")).to_have_attribute("aria-checked", "false")
    expect(feed.locator('[data-field="next_fetch"]')).to_have_text("paused")
    priority = feed.get_by_role("combobox", name=re.compile("Priority"))
    expect(priority).to_have_value("0")
    priority.select_option("7")
    confirm(page, "Set this feed's priority to 7?")
    expect(page.locator("#toast")).to_contain_text("Priority 7 set.")
    with live_server.api() as api:
        feeds = api.get("/api/v1/feeds").json()["items"]
    assert [f["priority"] for f in feeds if f["url"] == "https://news.example.org/world/rss.xml"] == [7]
    page.screenshot(path=str(screenshots / "feeds.png"), full_page=True)
    page.get_by_role("link", name="Crawl jobs").click()
    expect(page).to_have_title("Crawl jobs · MediaBeat")
    expect(page.locator(".card")).to_have_count(4)
    page.screenshot(path=str(screenshots / "jobs.png"), full_page=True)


def test_pages_do_not_break_their_own_content_security_policy(browser: Browser, live_server: LiveServer) -> None:
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    sign_in(page, live_server)
    for path in (
        "/app/admin/scheduler",
        "/app/admin/scheduler/new",
        "/app/admin/scheduler/runs",
        "/app/admin/feeds",
        "/app/admin/jobs",
        "/app/articles",
    ):
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
    context.close()
    assert problems == []


def test_a_member_signs_in_and_reads_an_article(page: Page, live_server: LiveServer, screenshots: Path) -> None:
    engine = sa.create_engine(live_server.env["MEDIABEAT_DATABASE_URL"])
    now = datetime.now(UTC)
    with engine.begin() as conn:
        org_id = conn.execute(sa.select(organizations.c.id).where(organizations.c.name == "newsroom")).scalar_one()
        for n, title in enumerate(("Council approves the new tram line", "Harbour festival draws record crowds")):
            url = f"https://news.example.org/city/{n}.html"
            conn.execute(
                articles.insert().values(
                    org_id=org_id,
                    url=url,
                    canonical_url=url,
                    url_hash=url_hash(url),
                    title=title,
                    author="Dana Reporter",
                    published_at=now - timedelta(hours=3 - n),
                    summary=f"{title}, in short.",
                    text=f"{title}.\nThe first paragraph of the story.\nThe second paragraph, with the details.",
                    language="en",
                    fetched_at=now,
                    created_at=now,
                )
            )
    engine.dispose()
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill(MEMBER[0])
    page.get_by_label("Password").fill(MEMBER[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_title("Articles · MediaBeat")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link")).to_have_text(
        ["Feeds", "Articles", "Monitors", "Stories"]
    )
    expect(page.locator("[data-article-id]")).to_have_count(2)
    page.screenshot(path=str(screenshots / "articles.png"), full_page=True)
    page.get_by_role("link", name="Council approves the new tram line").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Council approves the new tram line")
    expect(page.locator("article")).to_contain_text("The second paragraph, with the details.")
    expect(page.get_by_role("link", name="https://news.example.org/city/0.html")).to_have_attribute(
        "rel", "noopener noreferrer nofollow"
    )
    page.screenshot(path=str(screenshots / "article.png"), full_page=True)


def test_a_member_adds_a_feed_and_pauses_it(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server, MEMBER, path="/app/feeds")
    expect(page).to_have_title("Feeds · MediaBeat")
    page.get_by_label("Feed URL").fill("https://city.example.org/feeds/council.xml")
    page.get_by_label("Add it without fetching it now").check()  # example.org is not reachable from here
    page.get_by_role("button", name="Add feed").click()
    confirm(page, "Add this feed?")
    feed = page.locator("tr[data-feed-id]", has_text="https://city.example.org/feeds/council.xml")
    expect(feed).to_have_count(1)
    expect(feed.get_by_role("combobox")).to_have_count(0)  # priorities are the admins'
    feed.get_by_role("switch").click()
    confirm(page, "Disable this feed?")
    expect(feed.get_by_role("switch")).to_have_attribute("aria-checked", "false")
    with live_server.api(*MEMBER) as api:
        mine = api.get("/api/v1/feeds").json()["items"]
    assert [(f["url"], f["active"]) for f in mine if "city.example.org" in f["url"]] == [
        ("https://city.example.org/feeds/council.xml", False)
    ]


def test_the_task_page_mutes_and_unmutes_its_alerts(page: Page, live_server: LiveServer) -> None:
    task_id = create_task(live_server, "mute-me", "nightly_cleanup", alerts={"late_after_s": 600})
    sign_in(page, live_server, path="/app/admin/scheduler/tasks/mute-me")
    panel = page.locator("#task-alerts")
    expect(panel).to_contain_text("Late: a run not started 600 s after its due time")
    panel.get_by_role("button", name="Mute 1 h").click()
    expect(panel.locator("#alerts-muted")).to_contain_text("Muted until")
    with live_server.api() as api:
        assert api.get(f"/api/v1/scheduler/tasks/{task_id}/alerts").json()["muted"] is True
    panel.get_by_role("button", name="Unmute").click()
    expect(panel.get_by_role("button", name="Mute 24 h")).to_be_visible()
    with live_server.api() as api:
        assert api.get(f"/api/v1/scheduler/tasks/{task_id}/alerts").json()["mute_until"] is None
