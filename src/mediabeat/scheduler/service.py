"""SchedulerService: one front door to the scheduler's parts, built once in app.py.

The work is done by four small classes, each readable at once: TaskAdmin (admin.py) changes
tasks, SchedulerQueries (queries.py) answers questions, RunExecutor (runner.py) runs runs and
records them, DueRuns (due.py) claims what is due, and RunLiveness (liveness.py) heartbeats
and reaps. This class wires them and forwards to them, so callers need one object.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from mediabeat.clock import Clock
from mediabeat.db.stores.chains import ChainStore
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.db.stores.stats import StatsStore
from mediabeat.db.stores.task_alerts import TaskAlertStore
from mediabeat.domain.metrics import MetricsSnapshot
from mediabeat.domain.scheduler import (
    NewTask,
    OverlapForbidden,
    RunFilter,
    RunNotFound,
    RunRecord,
    SchedulerPause,
    SchedulerStats,
    TaskChains,
    TaskChanges,
    TaskNotFound,
    TaskRecord,
    TaskValidationError,
)
from mediabeat.domain.task_alerts import AlertRuleChanges, AlertRules, TaskAlertRecord
from mediabeat.schedule import CronSchedule
from mediabeat.scheduler.admin import TaskAdmin
from mediabeat.scheduler.alerts import NoAlerts, RunAlerts
from mediabeat.scheduler.chains import chains_by_task
from mediabeat.scheduler.changes import check_schedule
from mediabeat.scheduler.due import DueRuns
from mediabeat.scheduler.liveness import RunLiveness
from mediabeat.scheduler.notify import ChangeNotifier, LocalNotifier
from mediabeat.scheduler.pause import PauseSwitch
from mediabeat.scheduler.queries import SchedulerQueries
from mediabeat.scheduler.registry import HandlerRegistry
from mediabeat.scheduler.runner import RunExecutor
from mediabeat.scheduler.task_alerting import OwnChannelSetup, TaskAlerting

log = logging.getLogger("mediabeat.alerts")
# Late, missing and slow are looked for this often (a read of every watched task's newest runs).
ALERT_CHECK_SECONDS = 30.0

__all__ = [
    "NewTask",
    "OverlapForbidden",
    "SchedulerService",
    "SchedulerTimings",
    "TaskChanges",
    "TaskNotFound",
    "TaskValidationError",
    "check_schedule",
]


@dataclass(frozen=True, slots=True)
class SchedulerTimings:
    """The loop's time constants, from settings."""

    misfire_grace: timedelta = timedelta(seconds=60)
    max_catch_up: int = 24
    stale_after: timedelta = timedelta(seconds=20)
    claim_batch: int = 1000
    max_concurrent: int = 32
    backlog: int = 1000
    backlog_hold: timedelta = timedelta(seconds=5)
    heartbeat: timedelta = timedelta(seconds=5)
    cancel_grace: timedelta = timedelta(seconds=30)
    run_log_max_chars: int = 64_000
    keep_empty_runs: bool = False


class SchedulerService:
    """The scheduler's operations; the loop (loop.py) calls execute_due_tasks() and the maintenance steps."""

    def __init__(
        self,
        *,
        store: SchedulerStore,
        stats_store: StatsStore,
        registry: HandlerRegistry,
        clock: Clock,
        node_id: str,
        timings: SchedulerTimings = SchedulerTimings(),
        notifier: ChangeNotifier | None = None,
        alerts: RunAlerts | None = None,
        own_alert_channels: OwnChannelSetup | None = None,
        maintenance_store: SchedulerStore | None = None,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.node_id = node_id
        self.timings = timings
        self.notifier: ChangeNotifier = notifier or LocalNotifier()
        self.alerts: RunAlerts = alerts or NoAlerts()
        self._alerts_checked_at: datetime | None = None
        self.alerting = self._alerting(store, maintenance_store or store, own_alert_channels)
        self.chain_store = ChainStore(store.db)
        self.admin = TaskAdmin(
            store=store, chains=self.chain_store, registry=registry, clock=clock, notifier=self.notifier
        )
        self.queries = SchedulerQueries(store=store, stats_store=stats_store, registry=registry, clock=clock)
        self.runner = RunExecutor(
            store=store,
            chains=self.chain_store,
            registry=registry,
            clock=clock,
            node_id=node_id,
            notifier=self.notifier,
            alerting=self.alerting,
            cancel_grace_s=timings.cancel_grace.total_seconds(),
            run_log_max_chars=timings.run_log_max_chars,
            keep_empty_runs=timings.keep_empty_runs,
        )
        self.pause_switch = PauseSwitch(store=store, clock=clock, notifier=self.notifier)
        self.due = self._due_runs(store, timings)
        # Heartbeats and the reaper may use their own small pool, so that runs holding every
        # connection of the main one cannot make this node look dead.
        self.liveness = RunLiveness(
            store=maintenance_store or store,
            executor=self.runner,
            clock=clock,
            heartbeat=timings.heartbeat,
            stale_after=timings.stale_after,
        )

    def _due_runs(self, store: SchedulerStore, timings: SchedulerTimings) -> DueRuns:
        return DueRuns(
            store=store,
            executor=self.runner,
            clock=self.clock,
            misfire_grace=timings.misfire_grace,
            max_catch_up=timings.max_catch_up,
            stale_after=timings.stale_after,
            claim_batch=timings.claim_batch,
            max_concurrent=timings.max_concurrent,
            backlog=timings.backlog,
            backlog_hold=timings.backlog_hold,
        )

    def _alerting(
        self, store: SchedulerStore, maintenance: SchedulerStore, own_channels: OwnChannelSetup | None
    ) -> TaskAlerting:
        """The per-task alert rules, sending to the global channels or a task's own."""
        return TaskAlerting(
            store=TaskAlertStore(store.db),
            scheduler_store=maintenance,
            clock=self.clock,
            node_id=self.node_id,
            global_channels=self.alerts,
            own_channels=own_channels,
        )

    # -- administration (TaskAdmin) ---------------------------------------------------

    async def create_task(self, spec: NewTask, *, alerts: AlertRuleChanges | None = None) -> TaskRecord:
        """Create a task, with alert rules if given (checked first: a bad rule creates nothing)."""
        if alerts is not None:
            self.alerting.check_rules(alerts)
        task = await self.admin.create_task(spec)
        if alerts is not None and not alerts.empty:
            await self.alerting.set_rules(task.id, alerts)
        return task

    async def update_task(self, task_id: int, changes: TaskChanges) -> TaskRecord:
        await self.queries.get_task(task_id)  # an id out of range is TaskNotFound, before any query
        return await self.admin.update_task(task_id, changes)

    async def set_enabled(self, task_id: int, enabled: bool) -> TaskRecord:
        return await self.update_task(task_id, TaskChanges(enabled=enabled))

    async def toggle(self, task_id: int) -> TaskRecord:
        task = await self.queries.get_task(task_id)
        return await self.set_enabled(task_id, not task.enabled)

    async def delete_task(self, task_id: int) -> None:
        await self.queries.get_task(task_id)
        await self.admin.delete_task(task_id)

    # -- queries (SchedulerQueries) ------------------------------------------------------

    async def list_tasks(self) -> list[TaskRecord]:
        return await self.queries.list_tasks()

    async def get_task(self, task_id: int) -> TaskRecord:
        return await self.queries.get_task(task_id)

    async def get_task_by_name(self, name: str) -> TaskRecord:
        return await self.queries.get_task_by_name(name)

    async def task_chains(self, task_id: int) -> TaskChains:
        """The tasks this one runs after, and those that run after it, with the kind of each chain."""
        return chains_by_task(await self.chain_store.links(task_id)).get(task_id, TaskChains())

    async def all_chains(self) -> dict[int, TaskChains]:
        """Every task's chains, by task id (a task without any has no entry)."""
        return chains_by_task(await self.chain_store.links())

    def handler_names(self) -> list[str]:
        return self.queries.handler_names()

    async def upcoming(self, task: TaskRecord, count: int) -> list[datetime]:
        return await self.queries.upcoming(task, count)

    def next_fires(self, schedule: CronSchedule, count: int) -> list[datetime]:
        return self.queries.next_fires(schedule, count)

    async def list_runs(
        self, filters: RunFilter | None = None, *, limit: int = 50, before_id: int | None = None
    ) -> list[RunRecord]:
        return await self.queries.list_runs(filters, limit=limit, before_id=before_id)

    async def get_run(self, run_id: int) -> RunRecord | None:
        return await self.queries.get_run(run_id)

    async def run_log(self, run_id: int) -> str | None:
        """What the run logged (None until it ends, or if it logged nothing); RunNotFound if there is no such run."""
        run = await self.queries.get_run(run_id)
        if run is None:
            raise RunNotFound(f"no run with id {run_id}")
        return run.log

    async def stats(self) -> SchedulerStats:
        return await self.queries.stats()

    async def metrics_snapshot(self) -> MetricsSnapshot:
        return await self.queries.metrics_snapshot()

    # -- running runs (RunExecutor, DueRuns, RunLiveness) --------------------------------

    async def run_now(self, name: str, *, triggered_by: str | None = None) -> int:
        """Start a manual run in the background and return its id (OverlapForbidden if forbidden)."""
        return await self.runner.run_now(await self.get_task_by_name(name), triggered_by=triggered_by)

    async def run_now_and_wait(self, name: str, *, triggered_by: str | None = None) -> RunRecord:
        """Run a task now and return its finished run."""
        return await self.runner.wait_for_run(await self.run_now(name, triggered_by=triggered_by))

    async def wait_for_run(self, run_id: int) -> RunRecord:
        return await self.runner.wait_for_run(run_id)

    async def adopt_handed_runs(self, run_ids: list[int] | None = None) -> int:
        """Start runs handed over to any node, as long as they are fresh (older ones are the reaper's)."""
        fresh_since = self.clock.now() - self.timings.stale_after
        return await self.runner.adopt_handed_runs(fresh_since=fresh_since, run_ids=run_ids)

    async def cancel_run(self, run_id: int, *, by: str) -> RunRecord:
        """Cancel a running run on whichever node executes it (RunNotFound; RunNotRunning if it has ended)."""
        return await self.runner.request_cancel(run_id, by=by)

    async def check_cancel_requests(self) -> int:
        return await self.runner.check_cancel_requests()

    # -- the cluster-wide pause (PauseSwitch) ---------------------------------------------

    async def pause_state(self) -> SchedulerPause:
        return await self.pause_switch.state()

    async def observe_pause(self) -> SchedulerPause:
        return await self.pause_switch.observe()

    async def pause(self, *, by: str, reason: str | None = None) -> SchedulerPause:
        """Stop scheduled, chained and retry runs from starting on every node; manual runs still start."""
        return await self.pause_switch.pause(by=by, reason=reason)

    async def resume(self, *, by: str) -> SchedulerPause:
        return await self.pause_switch.resume(by=by)

    async def prepare_schedules(self) -> int:
        return await self.due.prepare_schedules()

    @property
    def free_slots(self) -> int:
        return self.due.free_slots

    async def execute_due_tasks(self) -> int:
        return await self.due.execute_due_tasks()

    async def next_due_at(self) -> datetime | None:
        return await self.due.next_due_at()

    async def heartbeat(self, *, settle_orphans: bool = True) -> None:
        await self.liveness.heartbeat(settle_orphans=settle_orphans)

    @contextlib.asynccontextmanager
    async def heartbeating(self) -> AsyncIterator[None]:
        async with self.liveness.heartbeating():
            yield

    async def reap_abandoned(self) -> list[RunRecord]:
        return await self.liveness.reap_abandoned()

    @property
    def active_run_ids(self) -> list[int]:
        return self.runner.active_run_ids

    async def wait_idle(self, within: float | None = None) -> None:
        await self.runner.wait_idle(within)

    async def cancel_all(self) -> None:
        await self.runner.cancel_all()

    # -- alert rules per task (TaskAlerting) ------------------------------------------------

    async def alert_rules(self, task_id: int) -> AlertRules:
        """The task's alert rules (the defaults when it has none); TaskNotFound for no such task."""
        await self.queries.get_task(task_id)
        return await self.alerting.rules(task_id)

    async def set_alert_rules(self, task_id: int, changes: AlertRuleChanges) -> AlertRules:
        """Change a task's alert rules (TaskValidationError names a bad field)."""
        await self.queries.get_task(task_id)
        if changes.empty:
            return await self.alerting.rules(task_id)
        return await self.alerting.set_rules(task_id, changes)

    async def recent_alerts(self, task_id: int, *, limit: int = 20) -> list[TaskAlertRecord]:
        """The task's newest alerts, newest first, muted ones too."""
        await self.queries.get_task(task_id)
        return await self.alerting.recent(task_id, limit=limit)

    async def check_alerts_if_due(self) -> int:
        """The periodic alert check, at most every ALERT_CHECK_SECONDS of clock time (the maintenance step's)."""
        now = self.clock.now()
        last = self._alerts_checked_at
        if last is not None and (now - last).total_seconds() < ALERT_CHECK_SECONDS:
            return 0
        self._alerts_checked_at = now
        return await self.check_alerts()

    async def check_alerts(self) -> int:
        """The periodic check of late, missing and slow rules; a database error is logged, not raised."""
        try:
            return await self.alerting.check(self.clock.now())
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            log.error("could not check the alert rules: %s", exc)
            return 0
