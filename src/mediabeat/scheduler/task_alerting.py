"""Alert rules per task, carried out: decide (alert_rules.py), claim the alert once, send it to the right channel.

Two doors: `run_ended` at the end of each run (failure after N in a row, recovery), on the
node that recorded the run; and `check` from the maintenance step (late, missing, slow).
Each alert is a row in task_alerts with a unique (task, kind, key): a node sends only what
its INSERT won, so two nodes checking at the same moment send it once. A muted task's alerts
are recorded (muted) and not sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mediabeat.clock import Clock
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.db.stores.task_alerts import TaskAlertStore
from mediabeat.domain.scheduler import FAILURE_STATUSES, RunRecord, RunStatus, TaskValidationError
from mediabeat.domain.task_alerts import (
    AlertKind,
    AlertRuleChanges,
    AlertRules,
    TaskAlertRecord,
    apply_rule_changes,
)
from mediabeat.schedule import CronError, parse_schedule
from mediabeat.scheduler.alert_rules import (
    LOOKBACK,
    RUN_WINDOW,
    DueAlert,
    SentAlerts,
    alerts_due,
    run_alert,
    streak_key,
)
from mediabeat.scheduler.alerts import (
    Alert,
    Alerters,
    EmailAlerter,
    GuardedWebhookAlerter,
    NoAlerts,
    RunAlerts,
)
from mediabeat.settings import SmtpServer
from mediabeat.telemetry import ALERTS

log = logging.getLogger("mediabeat.alerts")

# How many of a task's runs a failure streak is counted over, at most.
MAX_STREAK_HISTORY = 1000
GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class OwnChannelSetup:
    """What a task's own webhook and address need: the guarded HTTP client, and the mail server if any."""

    client_factory: Callable[[], Any]
    mail_server: SmtpServer | None = None
    mail_sender: str = "MediaBeat <mediabeat@localhost>"
    dashboard_url: str | None = None
    sleep: Callable[[float], Any] = asyncio.sleep  # between delivery attempts (tests pass one that does not wait)


class OwnChannels:
    """A task's own webhook and/or address as a channel, one per destination (each sends in order)."""

    def __init__(self, setup: OwnChannelSetup) -> None:
        self.setup = setup
        self._channels: dict[tuple[str | None, str | None], RunAlerts] = {}

    def for_rules(self, rules: AlertRules) -> RunAlerts:
        key = (rules.webhook_url, rules.email)
        if key not in self._channels:
            self._channels[key] = self._build(rules)
        return self._channels[key]

    def _build(self, rules: AlertRules) -> RunAlerts:
        setup = self.setup
        found: list[RunAlerts] = []
        if rules.webhook_url:
            found.append(
                GuardedWebhookAlerter(
                    url=rules.webhook_url,
                    client_factory=setup.client_factory,
                    dashboard_url=setup.dashboard_url,
                    sleep=setup.sleep,
                )
            )
        if rules.email and setup.mail_server is not None:
            found.append(
                EmailAlerter(
                    server=setup.mail_server,
                    sender=setup.mail_sender,
                    recipients=[rules.email],
                    dashboard_url=setup.dashboard_url,
                    sleep=setup.sleep,
                )
            )
        return found[0] if len(found) == 1 else Alerters(found)

    async def drain(self) -> None:
        for channel in list(self._channels.values()):
            await channel.drain()


class TaskAlerting:
    """The rules of every task, applied; one per process, built by SchedulerService."""

    def __init__(
        self,
        *,
        store: TaskAlertStore,
        scheduler_store: SchedulerStore,
        clock: Clock,
        node_id: str,
        global_channels: RunAlerts,
        own_channels: OwnChannelSetup | None = None,
    ) -> None:
        self.store = store
        self.scheduler_store = scheduler_store
        self.clock = clock
        self.node_id = node_id
        self.global_channels = global_channels
        self.own = OwnChannels(own_channels) if own_channels is not None else None

    # -- the rules -------------------------------------------------------------------------

    async def rules(self, task_id: int) -> AlertRules:
        return await self.store.rules(task_id) or AlertRules(task_id=task_id)

    async def set_rules(self, task_id: int, changes: AlertRuleChanges) -> AlertRules:
        """Apply and store a change (TaskValidationError names a bad field)."""
        return await self.store.save_rules(self.check_rules(changes, await self.rules(task_id)))

    def check_rules(self, changes: AlertRuleChanges, rules: AlertRules | None = None) -> AlertRules:
        """The rules after `changes`, checked, including that this process can reach a task's own channels."""
        checked = apply_rule_changes(rules or AlertRules(task_id=0), changes, now=self.clock.now())
        if changes.webhook_url and self.own is None:
            raise TaskValidationError("alert_webhook_url", "this process cannot send to a task's own webhook")
        if changes.email and (self.own is None or self.own.setup.mail_server is None):
            raise TaskValidationError("alert_email", "needs a mail server: set MEDIABEAT_SMTP_URL")
        return checked

    async def recent(self, task_id: int, *, limit: int = 20) -> list[TaskAlertRecord]:
        return await self.store.recent(task_id, limit=limit)

    # -- at the end of a run ------------------------------------------------------------

    async def run_ended(self, run: RunRecord, *, has_rules: bool | None = None) -> None:
        """Raise a failure or recovery alert if the task's rules call for one; never raises.

        `has_rules` False (read with the batch of ends) skips the read of the task's rules.
        """
        if has_rules is False and isinstance(self.global_channels, NoAlerts):
            return  # no rules of its own, no global channel: nowhere to send
        try:
            await self._run_ended(run)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            log.error("could not check the alert rules after run %d of %s: %s", run.id, run.task, exc)

    async def _run_ended(self, run: RunRecord) -> None:
        if run.status not in FAILURE_STATUSES and run.status is not RunStatus.SUCCEEDED:
            return
        stored = await self.store.rules(run.task_id)
        if stored is None and isinstance(self.global_channels, NoAlerts):
            return  # nowhere to send: skip the history queries
        rules = stored or AlertRules(task_id=run.task_id)
        sent = SentAlerts(open_failure=await self.store.last_outcome_alert(run.task_id) is AlertKind.FAILURE)
        if run.status is RunStatus.SUCCEEDED and not sent.open_failure:
            return  # the common case: one success after another
        history: list[RunRecord] = []
        if run.status in FAILURE_STATUSES:
            limit = min(MAX_STREAK_HISTORY, rules.after_failures * 20 + 10)
            history = await self.store.outcome_history(run.task_id, run.id, limit=limit)
        kind = run_alert(run, history, rules, sent)
        if kind is not None:
            # One failure alert per streak, whichever of its runs claims it first (overlap allow).
            key = streak_key(history) if kind is AlertKind.FAILURE else f"run:{run.id}"
            await self._raise(run.task, rules, DueAlert(kind, key, "", run=run), self.clock.now())

    # -- the periodic check -----------------------------------------------------------------

    async def check(self, now: datetime | None = None) -> int:
        """Late, missing and slow: raise what is due for every task that has such a rule; returns how many."""
        now = now or self.clock.now()
        watched = await self.store.watched(runs_per_task=RUN_WINDOW, alerts_since=now - LOOKBACK - timedelta(days=1))
        if not watched:
            return 0
        pause = await self.scheduler_store.get_pause()
        raised = 0
        for task, rules, runs, alerts in watched:
            try:
                schedule = parse_schedule(task.cron, task.timezone)
            except CronError:
                continue
            if pause.paused:  # nothing is late or missing while an operator holds the scheduler
                rules = replace(rules, late_after_s=None, missing=False)
            quiet_before = pause.changed_at if not pause.paused else None
            sent = SentAlerts.of(alerts)
            for due in alerts_due(task, schedule, rules, runs, now, sent=sent, quiet_before=quiet_before):
                raised += await self._raise(task.name, rules, due, now)
        return raised

    # -- claim and send -----------------------------------------------------------------------

    async def _raise(self, task_name: str, rules: AlertRules, due: DueAlert, now: datetime) -> bool:
        """Record the alert (once across nodes) and, unless muted, send it; True if this call won it."""
        muted = rules.muted(now)
        alert = Alert(
            kind=due.kind, run=due.run, dashboard_url=None, task=task_name, summary=due.summary or None, facts=due.facts
        )
        record = await self.store.record(
            task_id=rules.task_id,
            kind=due.kind,
            key=due.key,
            run_id=due.run.id if due.run is not None else None,
            occurrence=due.occurrence,
            message=alert.text(),
            destination=_destination(rules),
            muted=muted,
            node_id=self.node_id,
            now=now,
        )
        if record is None:
            return False
        if muted:
            ALERTS.labels("none", due.kind.value, "muted").inc()
            log.info("alert %s about %s held back: muted until %s", due.kind, task_name, rules.mute_until)
            return True
        channel = self.own.for_rules(rules) if rules.has_own_channel and self.own is not None else self.global_channels
        channel.dispatch(alert)
        return True

    async def drain(self) -> None:
        """Wait for alerts still being sent (at shutdown and in tests)."""
        await self.global_channels.drain()
        if self.own is not None:
            await self.own.drain()


def _destination(rules: AlertRules) -> str:
    if not rules.has_own_channel:
        return GLOBAL
    return ", ".join(part for part in (rules.webhook_url, rules.email) if part)
