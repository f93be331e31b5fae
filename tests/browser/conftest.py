"""Browser-test fixtures: the real server in a subprocess on 127.0.0.1, users made with the CLI, Debian's chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserType, Playwright, sync_playwright

from tests.servers import free_port, wait_for_http

# Debian's chromium by default; MEDIABEAT_TEST_CHROMIUM names another build (or a missing one, to try the skip).
CHROMIUM = os.environ.get("MEDIABEAT_TEST_CHROMIUM", "/usr/bin/chromium")
ADMIN = ("admin@browser.test", "admin-browser-pass-1")
MEMBER = ("member@browser.test", "member-browser-pass-1")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

NO_CHROMIUM = f"{CHROMIUM} is missing: apt-get install -y chromium to run the browser tests"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without Chromium, skip the browser tests (exit status 0) instead of failing `make test` on a fresh machine.

    A module-level skip would leave no test collected, which pytest reports as exit status 5. The hook
    sees every collected test, the other folders' too, so it marks only this folder's.
    """
    if Path(CHROMIUM).is_file():
        return
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.skip(reason=NO_CHROMIUM))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Report those skips from this file, so that `-ra` folds them into one line for every browser test module."""
    report: pytest.TestReport = yield
    if report.skipped and isinstance(report.longrepr, tuple) and report.longrepr[2] == f"Skipped: {NO_CHROMIUM}":
        report.longrepr = (__file__, 0, report.longrepr[2])
    return report


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(scope="module")
def browser_context_args() -> dict[str, Any]:
    """A laptop-sized window in UTC (replaces the plugin's, which would need a session-long Playwright)."""
    return {"viewport": {"width": 1366, "height": 900}, "timezone_id": "UTC"}


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]

    @contextlib.contextmanager
    def api(self, email: str = ADMIN[0], password: str = ADMIN[1]) -> Iterator[httpx.Client]:
        """A client signed in with a session cookie, sending the CSRF header on every request."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
            response.raise_for_status()
            client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
            yield client


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    mediabeat = shutil.which("mediabeat", path=str(Path(sys.executable).parent)) or "mediabeat"
    subprocess.run([mediabeat, *args], env=env, input=stdin, text=True, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A fresh database, an admin and a member created with `mediabeat users create`, and the server."""
    directory = tmp_path_factory.mktemp("browser")
    env = {
        **os.environ,
        "MEDIABEAT_DATABASE_URL": f"sqlite:///{directory / 'mediabeat.db'}",
        "MEDIABEAT_ENABLE_SCHEDULER": "false",
        "MEDIABEAT_LOG_LEVEL": "WARNING",
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }
    _cli(env, "db", "upgrade")
    _cli(env, "users", "create", ADMIN[0], "--role", "admin", "--org", "newsroom", "--password-stdin", stdin=ADMIN[1])
    _cli(env, "users", "create", MEMBER[0], "--org", "newsroom", "--password-stdin", stdin=MEMBER[1])
    port = free_port()
    log = (directory / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("serve_app.py")), str(port)], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_http(f"{url}/healthz", process, within=30)
        except AssertionError as exc:
            raise RuntimeError(f"{exc}: {(directory / 'server.log').read_text()}") from None
        yield LiveServer(url=url, env=env)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def base_url() -> str | None:
    """Replaces pytest-base-url's fixture (which pytest 9 warns about); the tests build full URLs themselves."""
    return None


# pytest-playwright keeps one Playwright (and its event loop) for the whole session. On an xdist worker that
# also runs pytest-asyncio tests after these, that loop makes theirs fail ("another loop is running"), so the
# browser lives only as long as this module's tests.
@pytest.fixture(scope="module")
def playwright(_pw_api_request_contexts: Any) -> Iterator[Playwright]:
    runner = sync_playwright().start()
    if _pw_api_request_contexts:
        _pw_api_request_contexts.instrument(runner)
    yield runner
    runner.stop()


@pytest.fixture(scope="module")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    chosen: BrowserType = getattr(playwright, browser_name)
    return chosen


@pytest.fixture(scope="module")
def launch_browser(browser_type_launch_args: dict[str, Any], browser_type: BrowserType) -> Callable[..., Browser]:
    def launch(**kwargs: Any) -> Browser:
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="module")
def browser(launch_browser: Callable[..., Browser]) -> Iterator[Browser]:
    launched = launch_browser()
    yield launched
    launched.close()
