"""Swagger UI and ReDoc render in a real browser with every request outside 127.0.0.1 refused, under their CSP."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Browser, Route, expect

from tests.browser.conftest import LiveServer


class LoopbackOnly:
    """A route handler that lets requests to 127.0.0.1 through and refuses, and notes, every other."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    def __call__(self, route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()


# ReDoc always shows its maker's logo from their CDN; the CSP refuses it (nothing is fetched) and ReDoc hides it.
REDOC_LOGO_REFUSED = "Loading the image 'https://cdn.redoc.ly/redoc/logo-mini.svg' violates"


def test_swagger_ui_and_redoc_work_offline_within_their_csp(browser: Browser, live_server: LiveServer) -> None:
    context = browser.new_context()
    network = LoopbackOnly()
    context.route("**/*", network)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{live_server.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("MediaBeat")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/scheduler/tasks").first).to_be_visible()

    page.goto(f"{live_server.url}/redoc")
    expect(page.locator(".api-info h1")).to_contain_text("MediaBeat")
    expect(page.get_by_text("/api/v1/scheduler/tasks").first).to_be_attached()
    context.close()
    assert [problem for problem in problems if not problem.startswith(REDOC_LOGO_REFUSED)] == []
    assert network.refused == []  # the pages asked no other server for anything
