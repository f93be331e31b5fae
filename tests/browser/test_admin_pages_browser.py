"""The users, API tokens and audit log pages in a real browser: their forms, the token shown once, screenshots."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer
from tests.browser.test_dashboard_browser import confirm, sign_in

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]

EDITOR = ("editor@browser.test", "editor-browser-pass-1")


def test_an_admin_adds_a_user_changes_them_and_makes_and_revokes_a_token(
    page: Page, live_server: LiveServer, screenshots: Path
) -> None:
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    sign_in(page, live_server, path="/app/admin/users")
    expect(page).to_have_title("Users · MediaBeat")

    form = page.locator("#user-form")
    form.get_by_label("Email").fill(EDITOR[0])
    form.get_by_label("First password").fill(EDITOR[1])
    form.get_by_role("button", name="Add user").click()
    confirm(page, f"Add {EDITOR[0]}?")
    row = page.locator("tr[data-user-id]", has_text=EDITOR[0])
    expect(row).to_have_count(1)

    row.get_by_label(f"Role of {EDITOR[0]}").select_option("admin")
    confirm(page, f"Make {EDITOR[0]} an admin?")
    expect(page.locator("#toast")).to_contain_text("is now an admin")
    switch = row.get_by_role("switch")
    switch.click()
    confirm(page, f"Deactivate {EDITOR[0]}?")
    expect(switch).to_have_attribute("aria-checked", "false")
    page.screenshot(path=str(screenshots / "users.png"), full_page=True)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="API tokens").click()
    expect(page).to_have_title("API tokens · MediaBeat")
    page.locator("#token-form").get_by_label("Name").fill("prometheus")
    page.locator("#token-form").get_by_role("button", name="Create token").click()
    token = page.locator("#new-token-value")
    expect(token).to_have_text(re.compile(r"^\S{20,}$"))
    secret = token.inner_text()
    expect(page.locator("tr[data-token-id]", has_text="prometheus")).to_have_count(1)
    page.screenshot(path=str(screenshots / "tokens.png"), full_page=True)
    page.reload()
    expect(page.locator("#new-token")).to_be_hidden()
    assert secret not in page.content()  # shown once, never again
    token_row = page.locator("tr[data-token-id]", has_text="prometheus")
    token_row.get_by_role("button", name="Revoke").click()
    confirm(page, "Revoke prometheus?")
    expect(token_row.locator('[data-field="state"]')).to_have_text("Revoked")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    expect(page).to_have_title("Audit log · MediaBeat")
    page.get_by_label("Action").fill("user.update")
    page.get_by_role("button", name="Filter").click()
    events = page.locator("tr[data-event-id]")
    expect(events).to_have_count(2)  # the role, then the deactivation
    expect(events.first).to_contain_text('"is_active": false')
    page.get_by_label("Action").fill("")
    page.get_by_role("button", name="Filter").click()
    page.screenshot(path=str(screenshots / "audit.png"), full_page=True)
    assert problems == []
