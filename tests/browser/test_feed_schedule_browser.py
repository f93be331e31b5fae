"""The feeds page in a real browser: Fetch now shows the outcome, and the row shows the next fetch with its reason."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer
from tests.browser.test_dashboard_browser import sign_in

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]

# The live server refuses private addresses (the SSRF guard): this name resolves to loopback, so the feed
# is added unchecked (a name is vetted when resolved) and its fetch fails at once, with its reason.
FEED = "http://localhost:9/never-fetched.rss"


def test_fetch_now_shows_the_outcome_and_the_row_its_next_fetch_and_reason(page: Page, live_server: LiveServer) -> None:
    with live_server.api() as api:
        added = api.post("/api/v1/feeds", json={"url": FEED, "check": False})
        assert added.status_code == 201, added.text
    sign_in(page, live_server, path="/app/admin/feeds")
    row = page.locator("tr[data-feed-id]", has_text=FEED)
    expect(row).to_have_count(1)
    row.get_by_role("button", name=f"Fetch now: {FEED}").click()
    toast = page.locator("#toast")
    expect(toast).to_contain_text("Feed failed")
    expect(toast).to_contain_text("0 new crawl jobs")
    expect(toast).to_contain_text("Next:")
    page.reload()
    row = page.locator("tr[data-feed-id]", has_text=FEED)
    expect(row.locator('[data-field="interval"]')).to_contain_text("every")
    expect(row).to_contain_text("1 in a row")
