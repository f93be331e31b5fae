"""Failure alerts: tell a webhook (Slack, Mattermost, Teams or any JSON endpoint), or people by email, when runs fail.

An alert goes out when a task's run fails after a run that did not, and a recovery
notice when it succeeds again, so a task failing every ten minutes sends one message, not
a hundred. Sending never delays or breaks the scheduler: it happens in the background,
with a timeout and a few retries, and a webhook that stays down is only logged.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

from mediabeat.domain.scheduler import FAILURE_STATUSES, RunRecord, RunStatus
from mediabeat.mail import send_mail
from mediabeat.settings import SmtpServer
from mediabeat.telemetry import ALERTS

log = logging.getLogger("mediabeat.alerts")

RETRY_DELAYS_S = (1.0, 5.0, 30.0)


@dataclass(frozen=True, slots=True)
class Alert:
    """One message about one run."""

    kind: str  # "failure" or "recovery"
    run: RunRecord
    dashboard_url: str | None

    def text(self) -> str:
        link = f" {self.dashboard_url}/app/admin/scheduler/runs?task={self.run.task}" if self.dashboard_url else ""
        if self.kind == "recovery":
            return f"MediaBeat: task {self.run.task} succeeded again (run {self.run.id}).{link}"
        reason = (self.run.error or self.run.status).splitlines()[0][:300]
        return (
            f"MediaBeat: task {self.run.task} {self.run.status.replace('_', ' ')} (run {self.run.id}): {reason}{link}"
        )

    def payload(self) -> dict[str, Any]:
        """Slack-compatible `text`, plus the facts for anything that reads JSON."""
        return {
            "text": self.text(),
            "kind": self.kind,
            "task": self.run.task,
            "run_id": self.run.id,
            "status": self.run.status,
            "error": self.run.error,
            "scheduled_for": self.run.scheduled_for.isoformat(),
            "finished_at": self.run.finished_at.isoformat() if self.run.finished_at else None,
        }


class RunAlerts(Protocol):
    """Hears about every finished run; decides itself whether to tell anyone."""

    def run_finished(self, run: RunRecord, previous_status: RunStatus | None) -> None: ...

    async def drain(self) -> None: ...


def alert_for(run: RunRecord, previous_status: RunStatus | None) -> str | None:
    """Which alert a finished run deserves, given the status of the task's run before it."""
    failed_before = previous_status in FAILURE_STATUSES
    if run.status in FAILURE_STATUSES and not failed_before:
        return "failure"
    if run.status == RunStatus.SUCCEEDED and failed_before:
        return "recovery"
    return None


class _BackgroundAlerter(abc.ABC):
    """Sends each alert in the background with a few retries; a channel that stays down is only logged."""

    channel = "alert channel"
    label = "other"  # the channel label of mediabeat_alerts_total

    def __init__(self, *, dashboard_url: str | None, sleep: Callable[[float], Any]) -> None:
        self.dashboard_url = dashboard_url.rstrip("/") if dashboard_url else None
        self.sleep = sleep
        self._pending: set[asyncio.Task[bool]] = set()
        # One alert at a time, in the order the runs ended: a recovery never overtakes its failure.
        self._in_order = asyncio.Lock()

    def run_finished(self, run: RunRecord, previous_status: RunStatus | None) -> None:
        kind = alert_for(run, previous_status)
        if kind is None:
            return
        task = asyncio.create_task(self.send(Alert(kind=kind, run=run, dashboard_url=self.dashboard_url)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def send(self, alert: Alert) -> bool:
        """Deliver one alert, retrying a few times; True when it was accepted."""
        async with self._in_order:
            delivered = await self._send(alert)
        ALERTS.labels(self.label, alert.kind, "sent" if delivered else "failed").inc()
        return delivered

    async def _send(self, alert: Alert) -> bool:
        for delay in (*RETRY_DELAYS_S, None):
            problem = await self._deliver(alert)
            if problem is None:
                return True
            if delay is None:
                log.error("alert for run %d not delivered to the %s: %s", alert.run.id, self.channel, problem)
                return False
            await self.sleep(delay)
        return False

    @abc.abstractmethod
    async def _deliver(self, alert: Alert) -> str | None:
        """One attempt: None when delivered, else what went wrong."""

    async def drain(self) -> None:
        """Wait for alerts still being sent (at shutdown and in tests)."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=60)


class WebhookAlerter(_BackgroundAlerter):
    """Posts alerts to a webhook URL."""

    channel = "webhook"
    label = "webhook"

    def __init__(
        self,
        *,
        url: str,
        dashboard_url: str | None = None,
        timeout_s: float = 10.0,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        super().__init__(dashboard_url=dashboard_url, sleep=sleep)
        self.url = url
        self.timeout_s = timeout_s

    async def _deliver(self, alert: Alert) -> str | None:
        # The operator's own URL (a setting, not user input): no SSRF guard, so an internal chat server works.
        # Proxies come from the environment (HTTPS_PROXY, NO_PROXY); redirects are not followed.
        import aiohttp  # on the first alert: the CLI starts without the HTTP client

        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            async with (
                aiohttp.ClientSession(timeout=timeout, trust_env=True) as session,
                session.post(self.url, json=alert.payload(), allow_redirects=False) as response,
            ):
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None if 200 <= status < 300 else f"HTTP {status}"


class EmailAlerter(_BackgroundAlerter):
    """Mails alerts to people through an SMTP server (smtplib, in a thread).

    Over smtp:// the connection is upgraded with STARTTLS whenever the server offers it;
    a password is never sent in the clear, except to a server on loopback.
    """

    channel = "mail server"
    label = "email"

    def __init__(
        self,
        *,
        server: SmtpServer,
        sender: str,
        recipients: list[str],
        dashboard_url: str | None = None,
        timeout_s: float = 10.0,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        super().__init__(dashboard_url=dashboard_url, sleep=sleep)
        self.server = server
        self.sender = sender
        self.recipients = recipients
        self.timeout_s = timeout_s

    def message(self, alert: Alert) -> EmailMessage:
        run = alert.run
        message = EmailMessage()
        if alert.kind == "recovery":
            message["Subject"] = f"MediaBeat: {run.task} succeeded again"
        else:
            message["Subject"] = f"MediaBeat: {run.task} {run.status.replace('_', ' ')}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        lines = [
            alert.text(),
            "",
            f"Task:          {run.task}",
            f"Run:           {run.id} ({run.status})",
            f"Scheduled for: {run.scheduled_for.isoformat()}",
            f"Finished at:   {run.finished_at.isoformat() if run.finished_at else '-'}",
        ]
        if run.error and alert.kind == "failure":
            lines += ["", "Error:", run.error[:4000]]
        message.set_content("\n".join(lines) + "\n")
        return message

    async def _deliver(self, alert: Alert) -> str | None:
        try:
            await asyncio.to_thread(self._send_blocking, self.message(alert))
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def _send_blocking(self, message: EmailMessage) -> None:
        send_mail(self.server, message, timeout_s=self.timeout_s)


class Alerters:
    """Every configured channel hears about every finished run."""

    def __init__(self, channels: list[RunAlerts]) -> None:
        self.channels = channels

    def run_finished(self, run: RunRecord, previous_status: RunStatus | None) -> None:
        for channel in self.channels:
            channel.run_finished(run, previous_status)

    async def drain(self) -> None:
        await asyncio.gather(*(channel.drain() for channel in self.channels))


class NoAlerts:
    """Alerting switched off (no webhook or mail configured)."""

    def run_finished(self, run: RunRecord, previous_status: RunStatus | None) -> None:
        return None

    async def drain(self) -> None:
        return None
