"""SchedulerService: manage tasks, run them now or when due, and record every run."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import traceback
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mediabeat.clock import Clock
from mediabeat.db.stores.records import RunRecord, SchedulerStats, TaskRecord
from mediabeat.db.stores.scheduler import ClaimedRuns, OverlapForbidden, RunFilter, SchedulerStore
from mediabeat.db.stores.stats import StatsStore
from mediabeat.logs import run_log_context
from mediabeat.schedule import (
    CronError,
    CronSchedule,
    DuePlan,
    MisfirePolicy,
    initial_next_run,
    parse_schedule,
    plan_due,
)
from mediabeat.scheduler.alerts import NoAlerts, RunAlerts
from mediabeat.scheduler.changes import (
    TASK_NAME,
    NewTask,
    TaskChanges,
    TaskValidationError,
    check_schedule,
    draft_task,
    validate_changes,
)
from mediabeat.scheduler.notify import ChangeNotifier, LocalNotifier
from mediabeat.scheduler.registry import HandlerRegistry, UnknownHandler
from mediabeat.tasks.base import RunContext, SkipRun

log = logging.getLogger("mediabeat.scheduler")

__all__ = [
    "NewTask",
    "OverlapForbidden",
    "SchedulerService",
    "TaskChanges",
    "TaskNotFound",
    "TaskValidationError",
    "check_schedule",
]

# How long a finished run's outcome keeps being retried while the database is away.
RECORD_RETRY_SECONDS = (0.5, 1, 2, 4, 8, 15, 30)
MIN_HEARTBEAT_SLEEP_S = 0.05


class TaskNotFound(LookupError):
    """No task has that id or name."""


@dataclass(frozen=True, slots=True)
class SchedulerTimings:
    """The loop's time constants, from settings."""

    misfire_grace: timedelta = timedelta(seconds=60)
    max_catch_up: int = 24
    stale_after: timedelta = timedelta(seconds=20)
    claim_batch: int = 1000
    max_concurrent: int = 32
    heartbeat: timedelta = timedelta(seconds=5)


@dataclass(slots=True)
class _Execution:
    """A claimed group of runs this node is executing, for heartbeats and wait_idle()."""

    run_ids: list[int]
    trigger: str
    future: asyncio.Task[None] | None = None
    finished: list[RunRecord] = field(default_factory=list)


class SchedulerService:
    """The scheduler's operations; the loop (loop.py) calls execute_due_tasks() and maintenance()."""

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
        maintenance_store: SchedulerStore | None = None,
    ) -> None:
        self.store = store
        # Heartbeats and the reaper may use their own small pool, so that runs holding every
        # connection of the main one cannot make this node look dead.
        self.maintenance_store = maintenance_store or store
        self.stats_store = stats_store
        self.registry = registry
        self.clock = clock
        self.node_id = node_id
        self.timings = timings
        self.notifier: ChangeNotifier = notifier or LocalNotifier()
        self.alerts: RunAlerts = alerts or NoAlerts()
        self._executions: dict[int, _Execution] = {}

    # -- tasks -----------------------------------------------------------------------

    async def list_tasks(self) -> list[TaskRecord]:
        return await self.store.list_tasks()

    async def get_task(self, task_id: int) -> TaskRecord:
        task = await self.store.get_task(task_id)
        if task is None:
            raise TaskNotFound(f"no task with id {task_id}")
        return task

    async def get_task_by_name(self, name: str) -> TaskRecord:
        task = await self.store.get_task_by_name(name)
        if task is None:
            raise TaskNotFound(f"no task named {name!r}")
        return task

    async def set_enabled(self, task_id: int, enabled: bool) -> TaskRecord:
        return await self.update_task(task_id, TaskChanges(enabled=enabled))

    async def toggle(self, task_id: int) -> TaskRecord:
        task = await self.get_task(task_id)
        return await self.set_enabled(task_id, not task.enabled)

    async def update_task(self, task_id: int, changes: TaskChanges) -> TaskRecord:
        """Validate and apply changes; a new cron, zone or re-enable recomputes next_run_at."""
        task = await self.get_task(task_id)
        values = validate_changes(task, changes)
        if changes.after is not None:
            after_id = await self._upstream_id(task, changes.after)
            if after_id != task.after_task_id:
                values["after_task_id"] = after_id
        if not values:
            return task
        now = self.clock.now()
        reschedule = any(k in values for k in ("cron", "timezone")) or (values.get("enabled") and not task.enabled)
        if reschedule:
            schedule = parse_schedule(values.get("cron", task.cron), values.get("timezone", task.timezone))
            values["next_run_at"] = _next_after(schedule, now)
        updated = await self.store.update_task(task_id, values, now)
        if updated is None:
            raise TaskNotFound(f"no task with id {task_id}")
        await self.notifier.notify()
        return updated

    async def create_task(self, spec: NewTask) -> TaskRecord:
        """Add a task that runs one of the registered handlers on a schedule."""
        if not TASK_NAME.fullmatch(spec.name):
            raise TaskValidationError("name", "use 1-100 lower-case letters, digits and dashes, e.g. nightly-report")
        if await self.store.get_task_by_name(spec.name) is not None:
            raise TaskValidationError("name", f"a task named {spec.name!r} exists already")
        if spec.handler not in self.registry:
            known = ", ".join(self.registry.names()) or "none"
            raise TaskValidationError("handler", f"no handler named {spec.handler!r} (available: {known})")
        draft = draft_task(spec)
        values = validate_changes(draft, spec.as_changes(), only_changed=False)
        values["after_task_id"] = await self._upstream_id(draft, spec.after or "")
        schedule = parse_schedule(values["cron"], values["timezone"])
        now = self.clock.now()
        values.update(name=spec.name, handler=spec.handler, params=spec.params, next_run_at=_next_after(schedule, now))
        task = await self.store.create_task(values, now)
        await self.notifier.notify()
        return task

    async def delete_task(self, task_id: int) -> None:
        """Delete a task and its history; refused while one of its runs is in flight."""
        task = await self.get_task(task_id)
        running = await self.store.running_runs(task.id)
        if running:
            raise TaskValidationError("task", f"run {running[0].id} of {task.name!r} is still running; try again later")
        await self.store.delete_task(task.id)
        await self.notifier.notify()

    def handler_names(self) -> list[str]:
        """The handlers a task can use (the task templates this process knows)."""
        return self.registry.names()

    async def _upstream_id(self, task: TaskRecord, name: str) -> int | None:
        """The id of the task named `name`, checked: it exists and the chain has no loop."""
        if not name:
            return None
        upstream = await self.store.get_task_by_name(name)
        if upstream is None:
            raise TaskValidationError("after", f"no task named {name!r}")
        seen = {task.id}
        cursor: TaskRecord | None = upstream
        while cursor is not None:
            if cursor.id in seen:
                raise TaskValidationError("after", f"{task.name!r} after {name!r} would make a loop")
            seen.add(cursor.id)
            cursor = await self.store.get_task(cursor.after_task_id) if cursor.after_task_id else None
        return upstream.id

    async def upcoming(self, task: TaskRecord, count: int) -> list[datetime]:
        """The next `count` fire times of a task, in its own time zone."""
        return self.next_fires(parse_schedule(task.cron, task.timezone), count)

    def next_fires(self, schedule: CronSchedule, count: int) -> list[datetime]:
        """The next `count` fire times of a schedule from now, in its time zone."""
        return list(itertools.islice(schedule.fire_times(self.clock.now()), count))

    # -- runs --------------------------------------------------------------------------

    async def list_runs(
        self, filters: RunFilter | None = None, *, limit: int = 50, before_id: int | None = None
    ) -> list[RunRecord]:
        return await self.store.list_runs(filters or RunFilter(), limit=limit, before_id=before_id)

    async def get_run(self, run_id: int) -> RunRecord | None:
        return await self.store.get_run(run_id)

    async def stats(self) -> SchedulerStats:
        return await self.stats_store.scheduler_stats(self.clock.now())

    async def run_now(self, name: str, *, triggered_by: str | None = None) -> int:
        """Start a manual run in the background and return its id (OverlapForbidden if forbidden)."""
        task = await self.get_task_by_name(name)
        if task.handler not in self.registry:
            raise UnknownHandler(f"task {name!r} uses handler {task.handler!r}, which this process does not have")
        now = self.clock.now()
        run_id = await self.store.claim_manual_run(task=task, now=now, node_id=self.node_id, triggered_by=triggered_by)
        self._launch(ClaimedRuns(task=task, run_ids=[run_id], scheduled_for=[now]), trigger="manual")
        return run_id

    async def run_now_and_wait(self, name: str, *, triggered_by: str | None = None) -> RunRecord:
        """Run a task now and return its finished run."""
        run_id = await self.run_now(name, triggered_by=triggered_by)
        return await self.wait_for_run(run_id)

    async def wait_for_run(self, run_id: int) -> RunRecord:
        """Wait until a run this node executes has finished, and return it."""
        execution = self._executions.get(run_id)
        if execution is not None and execution.future is not None:
            await asyncio.shield(execution.future)
        run = await self.store.get_run(run_id)
        if run is None:
            raise LookupError(f"run {run_id} is gone")
        return run

    # -- the scheduled path -------------------------------------------------------------

    async def prepare_schedules(self) -> int:
        """Give every task without next_run_at its first due time; a never-run task is due at once."""
        now = self.clock.now()
        prepared = 0
        for task in await self.store.tasks_without_next_run():
            try:
                schedule = parse_schedule(task.cron, task.timezone)
            except CronError as exc:
                log.error("task %s has an unusable schedule and will not run: %s", task.name, exc)
                continue
            first = initial_next_run(schedule, now, never_ran=task.last_run_at is None)
            await self.store.set_next_run_if_unset(task.id, first)
            prepared += 1
        return prepared

    @property
    def free_slots(self) -> int:
        """How many more scheduled executions this node may start (timings.max_concurrent in all)."""
        executing = {id(e) for e in self._executions.values() if e.trigger == "schedule"}
        return max(0, self.timings.max_concurrent - len(executing))

    async def execute_due_tasks(self) -> int:
        """Claim the due occurrences this node has room for and start their handlers; returns how many runs started.

        A claim of one task counts as one execution, its catch-up occurrences run one after another.
        """
        free = self.free_slots
        if free == 0:
            return 0
        now = self.clock.now()
        outcome = await self.store.claim_due(
            now=now, node_id=self.node_id, limit=min(self.timings.claim_batch, free), plan=lambda t: self._plan(t, now)
        )
        for claim in outcome.claimed:
            self._launch(claim, trigger="schedule")
        return sum(len(c.run_ids) for c in outcome.claimed)

    def _plan(self, task: TaskRecord, now: datetime) -> DuePlan:
        try:
            schedule = parse_schedule(task.cron, task.timezone)
        except CronError as exc:
            log.error("task %s has an unusable schedule and will not run: %s", task.name, exc)
            return DuePlan(next_run_at=None)
        assert task.next_run_at is not None  # the claim query selects only due tasks
        if task.last_run_at is None and task.next_run_at <= now:
            # Never run: due at start-up whatever the misfire policy, as in the product note.
            return DuePlan(run=[task.next_run_at], next_run_at=_next_after(schedule, now))
        return plan_due(
            schedule,
            next_run_at=task.next_run_at,
            now=now,
            misfire=MisfirePolicy(task.misfire_policy),
            grace=self.timings.misfire_grace,
            max_catch_up=self.timings.max_catch_up,
        )

    async def next_due_at(self) -> datetime | None:
        return await self.store.earliest_next_run()

    # -- maintenance --------------------------------------------------------------------

    async def heartbeat(self, *, settle_orphans: bool = True) -> None:
        """Tell the database that this node's runs are alive, and abandon those it only appears to hold.

        Those are runs recorded under this node id that it is not executing and that nobody
        has heartbeated for two beats: a claim committed as the connection broke, or runs of
        an earlier process with the same MEDIABEAT_NODE_ID. A process with no scheduler loop
        (the CLI) only heartbeats.
        """
        active = {run_id for execution in self._executions.values() for run_id in execution.run_ids}
        now = self.clock.now()
        await self.maintenance_store.heartbeat_runs(active, now)
        if not settle_orphans:
            return
        orphans = await self.maintenance_store.abandon_orphans(
            node_id=self.node_id, executing=active, quiet_since=now - 2 * self.timings.heartbeat, now=now
        )
        for run in orphans:
            log.warning("run %d of %s abandoned: %s", run.id, run.task, run.error)
            await self._alert(run)

    @contextlib.asynccontextmanager
    async def heartbeating(self) -> AsyncIterator[None]:
        """Heartbeat this node's runs every timings.heartbeat while the block runs.

        For a process that runs tasks without a scheduler loop (whose maintenance heartbeats
        them otherwise): the CLI's `tasks run`, a server with ENABLE_SCHEDULER off. Without
        it, another node's reaper would take any run longer than stale_after for one whose
        node died.
        """
        keeper = asyncio.create_task(self._keep_runs_alive(), name="mediabeat-run-heartbeats")
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _keep_runs_alive(self) -> None:
        # A test clock may say no real time passes: beat at least every MIN_HEARTBEAT_SLEEP_S.
        interval = max(self.clock.real_seconds(self.timings.heartbeat.total_seconds()), MIN_HEARTBEAT_SLEEP_S)
        while True:
            await asyncio.sleep(interval)
            if not self._executions:
                continue
            try:
                await self.heartbeat(settle_orphans=False)
            except (sa.exc.SQLAlchemyError, OSError) as exc:
                log.error("could not heartbeat runs %s: %s", self.active_run_ids, exc)

    async def reap_abandoned(self) -> list[RunRecord]:
        """Mark runs whose node died `abandoned`, so nothing stays running forever."""
        reaped = await self.maintenance_store.reap_abandoned(now=self.clock.now(), stale_after=self.timings.stale_after)
        for run in reaped:
            log.warning("run %d of %s abandoned: %s", run.id, run.task, run.error)
            await self._alert(run)
        return reaped

    async def _alert(self, run: RunRecord) -> None:
        if isinstance(self.alerts, NoAlerts):
            return
        self.alerts.run_finished(run, await self.store.previous_outcome(run.task_id, run.id))

    @property
    def active_run_ids(self) -> list[int]:
        return sorted(self._executions)

    async def wait_idle(self, within: float | None = None) -> None:
        """Wait for every run this node started, chained runs included (shutdown, CLI, tests)."""
        deadline = None if within is None else asyncio.get_running_loop().time() + within
        while futures := {e.future for e in self._executions.values() if e.future is not None}:
            remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
            if remaining is not None and remaining <= 0:
                return
            await asyncio.wait(futures, timeout=remaining)

    async def cancel_all(self) -> None:
        """Cancel in-flight runs (shutdown after the grace period) and record them as failed.

        That covers the runs a cancelled execution had not reached yet (catch-up occurrences
        claimed together, an execution cancelled before it began), which no handler records.
        """
        executions = list({id(e): e for e in self._executions.values()}.values())
        futures = {e.future for e in executions if e.future is not None}
        for future in futures:
            future.cancel()
        if futures:
            await asyncio.wait(futures, timeout=30)
        run_ids = [run_id for e in executions for run_id in e.run_ids]
        if not run_ids:
            return
        error = f"cancelled: node {self.node_id} shut down before the run finished"
        try:
            ended = await self.store.fail_running(run_ids, finished_at=self.clock.now(), error=error)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            log.error("could not record %d cancelled run(s); the reaper will abandon them: %s", len(run_ids), exc)
            return
        if ended:
            log.warning("%d run(s) cancelled at shutdown were recorded as failed", ended)

    # -- executing runs -------------------------------------------------------------------

    def _launch(self, claim: ClaimedRuns, *, trigger: str) -> None:
        execution = _Execution(run_ids=list(claim.run_ids), trigger=trigger)
        for run_id in claim.run_ids:
            self._executions[run_id] = execution
        execution.future = asyncio.create_task(
            self._execute_claim(claim, trigger, execution), name=f"mediabeat-run-{claim.task.name}"
        )

    async def _execute_claim(self, claim: ClaimedRuns, trigger: str, execution: _Execution) -> None:
        try:
            for position, (run_id, scheduled_for) in enumerate(zip(claim.run_ids, claim.scheduled_for, strict=True)):
                if position > 0:
                    await self.store.mark_run_started(run_id, self.clock.now())
                with run_log_context(run_id, claim.task.name):
                    status = await self._execute_run(claim.task, run_id, scheduled_for, trigger)
                self._executions.pop(run_id, None)
                if status == "succeeded":
                    await self._start_dependents(claim.task, run_id, scheduled_for)
        finally:
            for run_id in claim.run_ids:
                self._executions.pop(run_id, None)
            await self.notifier.notify()

    async def _start_dependents(self, upstream: TaskRecord, run_id: int, scheduled_for: datetime) -> None:
        """Start the tasks chained after `upstream` (the run that just succeeded carries them)."""
        try:
            dependents = await self.store.dependents_of(upstream.id)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            log.error("could not look up the tasks that run after %s: %s", upstream.name, exc)
            return
        for task in dependents:
            if task.handler not in self.registry:
                log.error(
                    "task %s runs after %s but its handler %r is unknown here", task.name, upstream.name, task.handler
                )
                continue
            try:
                dependent_run = await self.store.claim_manual_run(
                    task=task,
                    now=self.clock.now(),
                    node_id=self.node_id,
                    trigger="dependency",
                    triggered_by=f"{upstream.name} run {run_id}",
                    scheduled_for=scheduled_for,
                )
            except OverlapForbidden as exc:
                log.warning("not starting %s after %s: %s", task.name, upstream.name, exc)
                continue
            self._launch(
                ClaimedRuns(task=task, run_ids=[dependent_run], scheduled_for=[scheduled_for]), trigger="dependency"
            )

    async def _execute_run(self, task: TaskRecord, run_id: int, scheduled_for: datetime, trigger: str) -> str:
        started = self.clock.now()
        ctx = RunContext(
            run_id=run_id,
            task_name=task.name,
            trigger=trigger,
            scheduled_for=scheduled_for,
            now=started,
            params=task.params or {},
            log=log,
        )
        status, error, trace, result = "succeeded", None, None, None
        try:
            handler = self.registry.get(task.handler)
            async with asyncio.timeout(task.timeout_s):
                result = dict(await handler(ctx))
        except TimeoutError:
            status, error = "timed_out", f"cancelled after the task's timeout of {task.timeout_s} s"
        except SkipRun as reason:
            status, error = "skipped", f"skipped: {reason}"
        except asyncio.CancelledError:
            status, error = "failed", f"cancelled: node {self.node_id} shut down mid-run"
            await self._record_end(run_id, status, error, None, None)
            raise
        except Exception as exc:  # a handler's failure is recorded; it never stops the scheduler
            status, error, trace = "failed", f"{type(exc).__name__}: {exc}", traceback.format_exc()
            log.warning("run %d of %s failed: %s", run_id, task.name, error)
        await self._record_end(run_id, status, error, trace, result)
        return status

    async def _record_end(
        self, run_id: int, status: str, error: str | None, trace: str | None, result: Mapping[str, Any] | None
    ) -> None:
        """Write the outcome, retrying through a database outage; the reaper covers a node that dies."""
        for delay in (*RECORD_RETRY_SECONDS, None):
            try:
                run = await self.store.record_run_end(
                    run_id,
                    status=status,
                    finished_at=self.clock.now(),
                    error=error,
                    traceback=trace,
                    result=dict(result) if result is not None else None,
                )
                if run is not None:
                    await self._alert(run)
                return
            except (sa.exc.SQLAlchemyError, OSError) as exc:
                if delay is None:
                    log.error("could not record the end of run %d; the reaper will abandon it: %s", run_id, exc)
                    return
                log.warning("recording run %d failed (%s); retrying in %s s", run_id, exc, delay)
                await asyncio.sleep(delay)


def _next_after(schedule: CronSchedule, now: datetime) -> datetime | None:
    upcoming = schedule.next_fire(now)
    return upcoming.astimezone(UTC) if upcoming else None
