"""Failure alerts reach a real webhook on loopback: one when a task starts failing, one when it recovers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from mediabeat.clock import FakeClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.scheduler.alerts import WebhookAlerter
from mediabeat.tasks.base import RunContext
from mediabeat.testing import build_test_scheduler
from tests.integration.test_scheduler_service import START


class Webhook:
    """A loopback HTTP server that keeps the JSON bodies posted to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


class Flaky:
    """Fails while `failing` is true."""

    def __init__(self) -> None:
        self.failing = True

    async def __call__(self, ctx: RunContext) -> dict[str, int]:
        if self.failing:
            raise ConnectionError("feed server refused the connection")
        return {"ok": 1}


async def test_one_alert_per_outage_and_one_on_recovery(db: Database, webhook: Webhook) -> None:
    await SchedulerStore(db).create_task({"name": "fetch", "handler": "fetch", "cron": "0 * * * *"}, START)
    alerter = WebhookAlerter(url=webhook.url, dashboard_url="http://127.0.0.1:8000/")
    handler = Flaky()
    service, _ = build_test_scheduler(db, clock=FakeClock(START), handlers={"fetch": handler}, alerts=alerter)
    for _ in range(3):
        assert (await service.run_now_and_wait("fetch")).status == "failed"
    handler.failing = False
    assert (await service.run_now_and_wait("fetch")).status == "succeeded"
    assert (await service.run_now_and_wait("fetch")).status == "succeeded"
    await alerter.drain()
    assert [a["kind"] for a in webhook.received] == ["failure", "recovery"]
    failure = webhook.received[0]
    assert failure["task"] == "fetch" and failure["status"] == "failed"
    assert failure["text"].startswith(
        "MediaBeat: task fetch failed (run 1): ConnectionError: feed server refused the connection"
    )
    assert "http://127.0.0.1:8000/app/admin/scheduler/runs?task=fetch" in failure["text"]


async def test_an_unreachable_webhook_is_logged_not_raised(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    await SchedulerStore(db).create_task({"name": "fetch", "handler": "fetch", "cron": "0 * * * *"}, START)
    delays: list[float] = []

    async def no_wait(seconds: float) -> None:
        delays.append(seconds)

    alerter = WebhookAlerter(url="http://127.0.0.1:9/unreachable", timeout_s=2, sleep=no_wait)
    service, _ = build_test_scheduler(db, clock=FakeClock(START), handlers={"fetch": Flaky()}, alerts=alerter)
    assert (await service.run_now_and_wait("fetch")).status == "failed"
    await alerter.drain()
    assert delays == [1.0, 5.0, 30.0]
    assert any("not delivered to the webhook" in r.message for r in caplog.records)
