"""Failure alerts: tell a webhook (Slack, Mattermost, Teams or any JSON endpoint) when runs fail.

An alert goes out when a task's run fails after a run that did not, and a recovery
notice when it succeeds again, so a task failing every ten minutes sends one message, not
a hundred. Sending never delays or breaks the scheduler: it happens in the background,
with a timeout and a few retries, and a webhook that stays down is only logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from mediabeat.db.stores.records import RunRecord

log = logging.getLogger("mediabeat.alerts")

FAILED_STATUSES = frozenset({"failed", "timed_out", "abandoned"})
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

    def run_finished(self, run: RunRecord, previous_status: str | None) -> None: ...

    async def drain(self) -> None: ...


def alert_for(run: RunRecord, previous_status: str | None) -> str | None:
    """Which alert a finished run deserves, given the status of the task's run before it."""
    failed_before = previous_status in FAILED_STATUSES
    if run.status in FAILED_STATUSES and not failed_before:
        return "failure"
    if run.status == "succeeded" and failed_before:
        return "recovery"
    return None


class WebhookAlerter:
    """Posts alerts to a webhook URL in the background."""

    def __init__(
        self,
        *,
        url: str,
        dashboard_url: str | None = None,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.url = url
        self.dashboard_url = dashboard_url.rstrip("/") if dashboard_url else None
        self.timeout = httpx.Timeout(timeout_s)
        self.transport = transport
        self.sleep = sleep
        self._pending: set[asyncio.Task[bool]] = set()

    def run_finished(self, run: RunRecord, previous_status: str | None) -> None:
        kind = alert_for(run, previous_status)
        if kind is None:
            return
        task = asyncio.create_task(self.send(Alert(kind=kind, run=run, dashboard_url=self.dashboard_url)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def send(self, alert: Alert) -> bool:
        """Deliver one alert, retrying a few times; True when the webhook accepted it."""
        async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
            for delay in (*RETRY_DELAYS_S, None):
                try:
                    response = await client.post(self.url, json=alert.payload())
                    if response.is_success:
                        return True
                    problem = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                if delay is None:
                    log.error("alert for run %d not delivered to the webhook: %s", alert.run.id, problem)
                    return False
                await self.sleep(delay)
        return False

    async def drain(self) -> None:
        """Wait for alerts still being sent (at shutdown and in tests)."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=60)


class NoAlerts:
    """Alerting switched off (no webhook configured)."""

    def run_finished(self, run: RunRecord, previous_status: str | None) -> None:
        return None

    async def drain(self) -> None:
        return None
