"""Failure alerts reach a real webhook and a real mail server on loopback: one per outage, one on recovery."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope

from mediabeat import telemetry
from mediabeat.clock import FakeClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.domain.scheduler import RunRecord
from mediabeat.scheduler.alerts import Alert, EmailAlerter, SmtpServer, WebhookAlerter
from mediabeat.settings import SettingsError, load_settings
from mediabeat.tasks.base import RunContext
from mediabeat.testing import build_test_scheduler
from tests.integration.test_scheduler_service import START
from tests.servers import free_port


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


def _alerts_sent(kind: str) -> float:
    labels = {"channel": "webhook", "kind": kind, "result": "sent"}
    return telemetry.REGISTRY.get_sample_value("mediabeat_alerts_total", labels) or 0.0


async def test_one_alert_per_outage_and_one_on_recovery(db: Database, webhook: Webhook) -> None:
    await SchedulerStore(db).create_task({"name": "fetch", "handler": "fetch", "cron": "0 * * * *"}, START)
    alerter = WebhookAlerter(url=webhook.url, dashboard_url="http://127.0.0.1:8000/")
    handler = Flaky()
    service, _ = build_test_scheduler(db, clock=FakeClock(START), handlers={"fetch": handler}, alerts=alerter)
    sent = {kind: _alerts_sent(kind) for kind in ("failure", "recovery")}
    for _ in range(3):
        assert (await service.run_now_and_wait("fetch")).status == "failed"
    handler.failing = False
    assert (await service.run_now_and_wait("fetch")).status == "succeeded"
    assert (await service.run_now_and_wait("fetch")).status == "succeeded"
    await alerter.drain()
    assert [a["kind"] for a in webhook.received] == ["failure", "recovery"]
    assert {kind: _alerts_sent(kind) - before for kind, before in sent.items()} == {"failure": 1, "recovery": 1}
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


class MailSink:
    """A real SMTP server on loopback (aiosmtpd) that keeps what it is sent, and who signed in."""

    def __init__(self, *, users: dict[str, str] | None = None, slow_subject: str | None = None) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.logins: list[str] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
                parsed = BytesParser(policy=policy.default).parsebytes(envelope.content)  # type: ignore[arg-type]
                if slow_subject and slow_subject in str(parsed["Subject"]):
                    await asyncio.sleep(0.5)  # a slow mail server, for the ordering of alerts
                sink.messages.append((list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
                return "250 OK"

        def authenticate(server: object, session: object, envelope: object, mechanism: str, data: Any) -> AuthResult:
            ok = users is not None and users.get(data.login.decode()) == data.password.decode()
            if ok:
                sink.logins.append(data.login.decode())
            return AuthResult(success=ok)

        self.port = free_port()
        extra: dict[str, Any] = {"authenticator": authenticate, "auth_require_tls": False} if users else {}
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **extra)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


async def test_alerts_are_mailed_on_failure_and_on_recovery(db: Database) -> None:
    """In order: the failure's mail is slow to deliver, and the recovery's waits for it."""
    sink = MailSink(users={"beat": "s3cret"}, slow_subject="failed")
    try:
        await SchedulerStore(db).create_task({"name": "fetch", "handler": "fetch", "cron": "0 * * * *"}, START)
        alerter = EmailAlerter(
            server=SmtpServer.from_url(f"smtp://beat:s3cret@127.0.0.1:{sink.port}"),
            sender="MediaBeat <beat@example.org>",
            recipients=["ops@example.org", "desk@example.org"],
            dashboard_url="http://127.0.0.1:8000",
        )
        handler = Flaky()
        service, _ = build_test_scheduler(db, clock=FakeClock(START), handlers={"fetch": handler}, alerts=alerter)
        for _ in range(2):
            assert (await service.run_now_and_wait("fetch")).status == "failed"
        handler.failing = False
        assert (await service.run_now_and_wait("fetch")).status == "succeeded"
        await alerter.drain()
    finally:
        sink.close()
    assert sink.logins == ["beat", "beat"]
    [(to, failure), (_, recovery)] = sink.messages
    assert to == ["ops@example.org", "desk@example.org"]
    assert failure["Subject"] == "MediaBeat: fetch failed" and failure["From"] == "MediaBeat <beat@example.org>"
    body = failure.get_body().get_content()  # type: ignore[union-attr]
    assert "ConnectionError: feed server refused the connection" in body
    assert "http://127.0.0.1:8000/app/admin/scheduler/runs?task=fetch" in body
    assert recovery["Subject"] == "MediaBeat: fetch succeeded again"


async def test_a_password_is_not_sent_to_a_server_without_encryption(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The sink offers no STARTTLS; were it not on loopback, the alerter must give up before signing in."""
    sink = MailSink(users={"beat": "s3cret"})
    monkeypatch.setattr(SmtpServer, "on_loopback", property(lambda self: False))
    delays: list[float] = []

    async def no_wait(seconds: float) -> None:
        delays.append(seconds)

    try:
        alerter = EmailAlerter(
            server=SmtpServer.from_url(f"smtp://beat:s3cret@127.0.0.1:{sink.port}"),
            sender="beat@example.org",
            recipients=["ops@example.org"],
            sleep=no_wait,
        )
        run = RunRecord(
            id=7,
            task_id=1,
            task="fetch",
            trigger="schedule",
            scheduled_for=START,
            started_at=START,
            finished_at=START,
            duration_ms=5,
            status="failed",
            error="boom",
            traceback=None,
            result=None,
            missed=0,
            node_id="n",
            heartbeat_at=START,
            triggered_by=None,
        )
        assert await alerter.send(Alert(kind="failure", run=run, dashboard_url=None)) is False
    finally:
        sink.close()
    assert sink.logins == [] and sink.messages == [] and delays == [1.0, 5.0, 30.0]
    assert any("not sending the password in the clear" in r.getMessage() for r in caplog.records)


def test_mail_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="MEDIABEAT_ALERT_EMAIL_TO needs MEDIABEAT_SMTP_URL"):
        load_settings(alert_email_to="ops@example.org")
    with pytest.raises(SettingsError, match="MEDIABEAT_SMTP_URL: must look like smtp://"):
        load_settings(smtp_url="mail.example.org")
    server = SmtpServer.from_url("smtps://ops%40example.org:p%3Ass@mail.example.org")
    assert (server.port, server.implicit_tls, server.username, server.password) == (
        465,
        True,
        "ops@example.org",
        "p:ss",
    )
    assert SmtpServer.from_url("smtp://mail.example.org").port == 587
