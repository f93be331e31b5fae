"""Alert channels: tell a webhook (Slack, Mattermost, Teams or any JSON endpoint), or people by email.

What is news is decided elsewhere (scheduler/alert_rules.py, per task's rules: by default
one alert when a task starts failing and one when it recovers, so a task failing every ten
minutes sends one message, not a hundred). A channel only sends: in the background, with a
timeout and a few retries, so sending never delays or breaks the scheduler, and a webhook
that stays down is only logged.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import smtplib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from typing import Any, Protocol

from mediabeat.domain.scheduler import RunRecord
from mediabeat.domain.task_alerts import AlertKind
from mediabeat.mail import send_mail
from mediabeat.settings import SmtpServer
from mediabeat.telemetry import ALERTS

log = logging.getLogger("mediabeat.alerts")

RETRY_DELAYS_S = (1.0, 5.0, 30.0)


@dataclass(frozen=True, slots=True)
class Alert:
    """One message: about a run (failure, recovery, slow), or about a task's schedule (late, missing)."""

    kind: str  # an AlertKind value
    run: RunRecord | None
    dashboard_url: str | None
    task: str = ""  # the task's name (the run's, when there is a run)
    summary: str | None = None  # what a rule found, for late, missing and slow
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def task_name(self) -> str:
        return self.task or (self.run.task if self.run is not None else "")

    def text(self) -> str:
        link = f" {self.dashboard_url}/app/admin/scheduler/runs?task={self.task_name}" if self.dashboard_url else ""
        run = self.run
        if self.summary is not None or run is None:
            return f"MediaBeat: {self.summary or self.kind}.{link}"
        if self.kind == AlertKind.RECOVERY:
            return f"MediaBeat: task {run.task} succeeded again (run {run.id}).{link}"
        reason = (run.error or run.status).splitlines()[0][:300]
        return f"MediaBeat: task {run.task} {run.status.replace('_', ' ')} (run {run.id}): {reason}{link}"

    def payload(self) -> dict[str, Any]:
        """Slack-compatible `text`, plus the facts for anything that reads JSON."""
        run = self.run
        return {
            "text": self.text(),
            "kind": self.kind,
            "task": self.task_name,
            "run_id": run.id if run else None,
            "status": run.status if run else None,
            "error": run.error if run else None,
            "scheduled_for": run.scheduled_for.isoformat() if run else None,
            "finished_at": run.finished_at.isoformat() if run and run.finished_at else None,
            **self.facts,
        }


class RunAlerts(Protocol):
    """An alert channel: sends what it is given in the background (the rules decided it is news)."""

    def dispatch(self, alert: Alert) -> None: ...

    async def drain(self) -> None: ...


class PermanentProblem(str):
    """A delivery problem that trying again cannot fix (an address the SSRF guard refuses, a bad URL)."""


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

    def dispatch(self, alert: Alert) -> None:
        task = asyncio.create_task(self.send(replace(alert, dashboard_url=self.dashboard_url)))
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
            if delay is None or isinstance(problem, PermanentProblem):
                log.error("alert about %s not delivered to the %s: %s", _about(alert), self.channel, problem)
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
        if alert.kind == AlertKind.RECOVERY:
            message["Subject"] = f"MediaBeat: {alert.task_name} succeeded again"
        elif alert.kind == AlertKind.FAILURE and run is not None:
            message["Subject"] = f"MediaBeat: {run.task} {run.status.replace('_', ' ')}"
        else:
            message["Subject"] = f"MediaBeat: {alert.task_name} {alert.kind}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        lines = [alert.text(), "", f"Task:          {alert.task_name}"]
        if run is not None:
            lines += [
                f"Run:           {run.id} ({run.status})",
                f"Scheduled for: {run.scheduled_for.isoformat()}",
                f"Finished at:   {run.finished_at.isoformat() if run.finished_at else '-'}",
            ]
            if run.error and alert.kind == AlertKind.FAILURE:
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


class GuardedWebhookAlerter(_BackgroundAlerter):
    """Posts alerts to a task's own webhook URL, through the crawler's SSRF-guarded client.

    The URL is user input (an admin's, through the API), so it gets the crawler's rules:
    no loopback, private or metadata addresses unless MEDIABEAT_CRAWLER_ALLOW_PRIVATE_NETWORKS.
    """

    channel = "task's webhook"
    label = "webhook"

    def __init__(
        self,
        *,
        url: str,
        client_factory: Callable[[], Any],
        dashboard_url: str | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        super().__init__(dashboard_url=dashboard_url, sleep=sleep)
        self.url = url
        self.client_factory = client_factory

    async def _deliver(self, alert: Alert) -> str | None:
        # On the first alert: the CLI starts without aiohttp.
        from mediabeat.crawler.http import FetchError, FetchErrorKind

        body = json.dumps(alert.payload(), default=str).encode()
        try:
            async with self.client_factory() as client:
                result = await client.post(self.url, body, headers={"Content-Type": "application/json"})
        except FetchError as exc:
            permanent = exc.kind in (FetchErrorKind.BLOCKED, FetchErrorKind.BAD_URL)
            return PermanentProblem(str(exc)) if permanent else str(exc)
        return None if 200 <= result.status < 300 else f"HTTP {result.status}"


class Alerters:
    """Every configured channel gets every alert."""

    def __init__(self, channels: list[RunAlerts]) -> None:
        self.channels = channels

    def dispatch(self, alert: Alert) -> None:
        for channel in self.channels:
            channel.dispatch(alert)

    async def drain(self) -> None:
        await asyncio.gather(*(channel.drain() for channel in self.channels))


class NoAlerts:
    """Alerting switched off (no webhook or mail configured)."""

    def dispatch(self, alert: Alert) -> None:
        return None

    async def drain(self) -> None:
        return None


def _about(alert: Alert) -> str:
    return f"run {alert.run.id}" if alert.run is not None else f"task {alert.task_name} ({alert.kind})"
