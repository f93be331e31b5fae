"""Running runs: execute claimed runs' handlers, record how each ended, start chained tasks, cancel at shutdown."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mediabeat.clock import Clock
from mediabeat.db.stores.chains import ChainStore
from mediabeat.db.stores.run_ends import RunEndStore
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.domain.scheduler import (
    AllWorkFailed,
    ClaimedRuns,
    RunEnd,
    RunNotFound,
    RunNotRunning,
    RunRecord,
    RunStart,
    RunStatus,
    TaskRecord,
    Trigger,
)
from mediabeat.logs import RunLogCapture, run_log_context
from mediabeat.scheduler.backlog import RunBacklog
from mediabeat.scheduler.chain_runs import ChainStarter
from mediabeat.scheduler.chains import chain_kind_for
from mediabeat.scheduler.changes import retry_delay_s
from mediabeat.scheduler.notify import ChangeNotifier
from mediabeat.scheduler.registry import HandlerRegistry, UnknownHandler
from mediabeat.scheduler.run_ends import RecordedEnd, RunEndWriter, RunStartWriter
from mediabeat.scheduler.task_alerting import TaskAlerting
from mediabeat.tasks.base import NothingToDo, RunContext, SkipRun
from mediabeat.telemetry import TASK_RUN_DURATION, TASK_RUNS, TASK_RUNS_IN_PROGRESS

log = logging.getLogger("mediabeat.scheduler")

# Handed-over runs one loop step adopts at most (each is one person's `tasks run`).
ADOPT_BATCH = 100
# A run that ended so is retried while its task has retries left.
RETRIED_STATUSES = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT})
# Characters of log lines kept with each run (MEDIABEAT_RUN_LOG_MAX_CHARS).
RUN_LOG_MAX_CHARS = 64_000
# How long a cancelled handler has to stop before its run is recorded and its slot freed anyway.
CANCEL_GRACE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How one run ended, as recorded: status, error for people, traceback, and the handler's counts.

    `empty` says the handler found nothing to do (NothingToDo).
    """

    status: RunStatus
    error: str | None = None
    traceback: str | None = None
    result: dict[str, Any] | None = None
    empty: bool = False


@dataclass(slots=True)
class _Execution:
    """A claimed group of runs this node is executing, for heartbeats and wait_idle()."""

    run_ids: list[int]
    trigger: Trigger
    future: asyncio.Task[None] | None = None
    finished: list[RunRecord] = field(default_factory=list)
    # The last handler has returned: the slot is free while the end is being written.
    winding_down: bool = False


@dataclass(slots=True)
class _Handler:
    """A handler running for one run: its task, who asked to cancel it, and the grace timer that gives up on it."""

    task: asyncio.Task[RunOutcome]
    given_up: asyncio.Future[None]
    cancelled_by: str | None = None
    timer: asyncio.TimerHandle | None = None


class RunExecutor:
    """Executes the runs this node claimed, each in its own asyncio task, and records every end."""

    def __init__(
        self,
        *,
        store: SchedulerStore,
        chains: ChainStore,
        registry: HandlerRegistry,
        clock: Clock,
        node_id: str,
        notifier: ChangeNotifier,
        alerting: TaskAlerting,
        cancel_grace_s: float = CANCEL_GRACE_SECONDS,
        run_log_max_chars: int = RUN_LOG_MAX_CHARS,
        keep_empty_runs: bool = False,
        end_writer: RunEndWriter | None = None,
    ) -> None:
        self.run_logs = RunLogCapture(run_log_max_chars)
        self.cancel_grace_s = cancel_grace_s
        self.winding_down = asyncio.Event()  # set while wait_idle() waits: see RunContext
        self._handlers: dict[int, _Handler] = {}
        self._cancel_before_start: dict[int, str] = {}
        self._left_behind: set[asyncio.Task[RunOutcome]] = set()
        # Every execution task until it ends, including the moment after its last run is recorded
        # while it starts the tasks chained after it (wait_idle must not miss those).
        self._in_flight: set[asyncio.Task[None]] = set()
        self.store = store
        self.registry = registry
        self.clock = clock
        self.node_id = node_id
        self.notifier = notifier
        self.alerting = alerting
        self.keep_empty_runs = keep_empty_runs
        self.starts = end_writer.starts if end_writer is not None else RunStartWriter(RunEndStore(store.db))
        self.ends = end_writer or RunEndWriter(RunEndStore(store.db), starts=self.starts)
        # Queued executions this node claimed and has not started (DueRuns starts them as slots free).
        self.backlog = RunBacklog()
        self.on_slot_free: Callable[[], bool] | None = None
        self._cancelled_queued: set[asyncio.Future[RecordedEnd | None]] = set()
        self._executions: dict[int, _Execution] = {}
        self.chains = ChainStarter(
            store=store,
            chains=chains,
            registry=registry,
            clock=clock,
            node_id=node_id,
            notifier=notifier,
            launch=lambda claim, trigger: self.launch(claim, trigger=trigger),
        )

    @property
    def active_run_ids(self) -> list[int]:
        """The runs this node executes or holds queued (it heartbeats them all)."""
        return sorted({*self._executions, *self.backlog.run_ids})

    def executing_count(self, trigger: Trigger) -> int:
        """How many executions (a claim of catch-up runs counts once) of this trigger are in flight.

        An execution whose last handler has returned no longer counts, though its end may not be written yet.
        """
        return len({id(e) for e in self._executions.values() if e.trigger is trigger and not e.winding_down})

    async def flush_ends(self) -> None:
        """Wait until the ends of the runs finished so far are written (before a claim reads what is running)."""
        await self.ends.flush()

    def require_handler(self, task: TaskRecord) -> None:
        if task.handler not in self.registry:
            raise UnknownHandler(f"task {task.name!r} uses handler {task.handler!r}, which this process does not have")

    async def run_now(self, task: TaskRecord, *, triggered_by: str | None = None) -> int:
        """Start a manual run in the background and return its id (OverlapForbidden if forbidden)."""
        self.require_handler(task)
        now = self.clock.now()
        run_id = await self.store.claim_manual_run(task=task, now=now, node_id=self.node_id, triggered_by=triggered_by)
        self.launch(ClaimedRuns(task=task, run_ids=[run_id], scheduled_for=[now]), trigger=Trigger.MANUAL)
        return run_id

    async def hand_over(self, task: TaskRecord, *, triggered_by: str | None = None) -> int:
        """Insert a manual run for another node to adopt and run; returns its id (OverlapForbidden if forbidden)."""
        run_id = await self.store.claim_manual_run(
            task=task, now=self.clock.now(), node_id=None, triggered_by=triggered_by
        )
        await self.notifier.notify()  # wake the nodes' loops (NOTIFY on PostgreSQL; SQLite sees the commit)
        return run_id

    async def adopt_handed_runs(self, *, fresh_since: datetime, run_ids: list[int] | None = None) -> int:
        """Start the runs handed over to any node (by `tasks run` in a shell) whose handler this node has."""
        claims = await self.store.adopt_handed_runs(
            node_id=self.node_id,
            handlers=self.registry.names(),
            now=self.clock.now(),
            fresh_since=fresh_since,
            limit=ADOPT_BATCH,
            run_ids=run_ids,
        )
        for claim in claims:
            self.launch(claim, trigger=Trigger.MANUAL)
        return len(claims)

    async def wait_for_run(self, run_id: int) -> RunRecord:
        """Wait until a run this node executes has finished, and return it."""
        execution = self._executions.get(run_id)
        if execution is not None and execution.future is not None:
            await asyncio.shield(execution.future)
        run = await self.store.get_run(run_id)
        if run is None:
            raise RunNotFound(f"run {run_id} is gone")
        return run

    async def wait_idle(self, within: float | None = None) -> None:
        """Wait for every run this node started, chained runs included (shutdown, CLI, tests).

        Meanwhile the runs' `winding_down` is set, so handlers that follow new work finish their pass and end.
        """
        deadline = None if within is None else asyncio.get_running_loop().time() + within
        self.winding_down.set()
        try:
            while futures := set(self._in_flight):
                remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
                if remaining is not None and remaining <= 0:
                    return
                await asyncio.wait(futures, timeout=remaining)
        finally:
            self.winding_down.clear()

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
        await self.ends.flush()  # a run whose true end is being written is not "failed"
        error = f"cancelled: node {self.node_id} shut down before the run finished"
        try:
            ended = await self.store.fail_running(run_ids, finished_at=self.clock.now(), error=error)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            log.error("could not record %d cancelled run(s); the reaper will abandon them: %s", len(run_ids), exc)
            return
        if ended:
            log.warning("%d run(s) cancelled at shutdown were recorded as failed", ended)

    def cancel_local(self, run_id: int, by: str) -> bool:
        """Cancel a run this node executes: its handler's await points raise CancelledError.

        A run of a claim that has not begun yet (a later catch-up occurrence) is cancelled when
        its turn comes. If the handler has not stopped after the grace period, the run is
        recorded `cancelled` anyway and its slot freed; the handler is left to finish alone.
        Returns False if this node does not execute the run.
        """
        if run_id in self.backlog:
            self._cancel_queued(run_id, by)
            return True
        if run_id not in self._executions:
            return False
        handler = self._handlers.get(run_id)
        if handler is None:
            self._cancel_before_start[run_id] = by
            return True
        if handler.cancelled_by is not None:
            return True  # already asked
        handler.cancelled_by = by
        log.warning("run %d cancelled by %s", run_id, by)
        handler.task.cancel()
        # Real seconds whatever the clock: the handler needs real time to unwind.
        handler.timer = asyncio.get_running_loop().call_later(self.cancel_grace_s, _give_up, handler.given_up)
        return True

    def _cancel_queued(self, run_id: int, by: str) -> None:
        """A queued run of this node's backlog never starts: it ends `cancelled` (the rest of its claim stays)."""
        taken = self.backlog.remove(run_id)
        if taken is None:
            return
        claim, claimed_at = taken
        rest = [(r, when) for r, when in zip(claim.run_ids, claim.scheduled_for, strict=True) if r != run_id]
        if rest:
            kept = ClaimedRuns(
                task=claim.task, run_ids=[r for r, _ in rest], scheduled_for=[w for _, w in rest], queued=True
            )
            self.backlog.push(kept, claimed_at)
        log.warning("run %d of %s cancelled by %s before it started", run_id, claim.task.name, by)
        end = RunEnd(run_id, RunStatus.CANCELLED, self.clock.now(), error=f"cancelled by {by} before it started")
        future = self.ends.add(end)
        self._cancelled_queued.add(future)
        future.add_done_callback(self._cancelled_queued.discard)

    async def request_cancel(self, run_id: int, *, by: str) -> RunRecord:
        """Ask for a run to be cancelled on whichever node executes it (RunNotFound, RunNotRunning).

        The request is written on the run; the node executing it notices at its next heartbeat
        (or at once, if it is this node). A run handed over that no node has started yet ends at once.
        """
        run = await self.store.get_run(run_id)
        if run is not None and run.status.finished:
            raise RunNotRunning(run_id, run.status)
        run = await self.store.request_cancel(run_id, by=by, now=self.clock.now())
        if run is None:
            raise RunNotFound(f"no run with id {run_id}")
        if run.status is RunStatus.CANCELLED:  # handed over, and no node had started it
            return run
        if run.status.finished:
            raise RunNotRunning(run_id, run.status)
        if not self.cancel_local(run_id, by):
            await self.notifier.notify()  # wake the other nodes' loops, which look for cancel requests
        return run

    async def check_cancel_requests(self) -> int:
        """Cancel those of this node's runs that an operator asked to cancel; a primary-key read."""
        active = self.active_run_ids
        if not active:
            return 0
        return self.apply_cancel_requests(await self.store.cancel_requests(active))

    def apply_cancel_requests(self, requests: dict[int, str]) -> int:
        """Cancel the runs of this node that operators asked to cancel (read at the heartbeat); returns how many."""
        return sum(1 for run_id, by in requests.items() if self.cancel_local(run_id, by))

    def launch(self, claim: ClaimedRuns, *, trigger: Trigger) -> None:
        """Execute a claim's runs one after another in a background task of their own."""
        execution = _Execution(run_ids=list(claim.run_ids), trigger=trigger)
        for run_id in claim.run_ids:
            self._executions[run_id] = execution
        if claim.queued:  # it starts now: write so with the other starts of the moment
            self.starts.add(RunStart(claim.run_ids[0], claim.task.id, self.clock.now()))
        execution.future = asyncio.create_task(
            self._execute_claim(claim, trigger), name=f"mediabeat-run-{claim.task.name}"
        )
        self._in_flight.add(execution.future)
        execution.future.add_done_callback(self._in_flight.discard)

    async def _execute_claim(self, claim: ClaimedRuns, trigger: Trigger) -> None:
        try:
            for position, (run_id, scheduled_for) in enumerate(zip(claim.run_ids, claim.scheduled_for, strict=True)):
                if position > 0:
                    self.starts.add(RunStart(run_id, claim.task.id, self.clock.now()))
                with run_log_context(run_id, claim.task.name):
                    status, retried = await self._execute_run(claim.task, run_id, scheduled_for, trigger)
                self._executions.pop(run_id, None)
                kind = chain_kind_for(status, retried=retried) if status is not None else None
                if kind is not None:
                    await self.chains.after_run(claim.task, run_id, scheduled_for, kind)
        finally:
            for run_id in claim.run_ids:
                self._executions.pop(run_id, None)
                self._cancel_before_start.pop(run_id, None)
            await self.notifier.notify()

    async def _execute_run(
        self, task: TaskRecord, run_id: int, scheduled_for: datetime, trigger: Trigger
    ) -> tuple[RunStatus | None, bool]:
        """Run one run's handler and record how it ended; returns the status that starts chains
        (None: nothing is chained after the task, or the end could not be written) and whether a retry follows."""
        ctx = RunContext(
            run_id=run_id,
            task_name=task.name,
            trigger=trigger,
            scheduled_for=scheduled_for,
            now=self.clock.now(),
            params=task.params or {},
            log=log,
            winding_down=self.winding_down,
        )
        self._capture_logs(run_id)
        in_progress = TASK_RUNS_IN_PROGRESS.labels(task.name)
        in_progress.inc()
        started = time.perf_counter()
        try:
            by = self._cancel_before_start.pop(run_id, None)
            if by is not None:
                outcome = RunOutcome(RunStatus.CANCELLED, f"cancelled by {by} before it started")
            else:
                outcome = await self._supervise(task, ctx)
        except asyncio.CancelledError:
            TASK_RUNS.labels(task.name, RunStatus.FAILED.value).inc()
            await self._record_end(
                task, run_id, RunOutcome(RunStatus.FAILED, f"cancelled: node {self.node_id} shut down mid-run"), trigger
            )
            raise
        finally:
            in_progress.dec()
        TASK_RUNS.labels(task.name, outcome.status.value).inc()
        TASK_RUN_DURATION.labels(task.name).observe(time.perf_counter() - started)
        if outcome.status is RunStatus.FAILED:
            log.warning("run %d of %s failed: %s", run_id, task.name, outcome.error)
        elif outcome.status is RunStatus.CANCELLED:
            log.warning("run %d of %s: %s", run_id, task.name, outcome.error)
        recorded, retried = await self._record_end(task, run_id, outcome, trigger)
        return (recorded.run.status if recorded is not None and recorded.chained else None), retried

    async def _supervise(self, task: TaskRecord, ctx: RunContext) -> RunOutcome:
        """Run the handler in a task of its own, so that an operator can cancel it (cancel_local)."""
        loop = asyncio.get_running_loop()
        handler = _Handler(
            task=asyncio.create_task(self._call_handler(task, ctx), name=f"mediabeat-handler-{task.name}"),
            given_up=loop.create_future(),
        )
        self._handlers[ctx.run_id] = handler
        try:
            waits: set[asyncio.Future[Any]] = {handler.task, handler.given_up}
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the node shuts down: stop the handler, give it the grace period
            handler.task.cancel()
            await asyncio.wait({handler.task}, timeout=self.cancel_grace_s)
            raise
        finally:
            self._handlers.pop(ctx.run_id, None)
            if handler.timer is not None:
                handler.timer.cancel()
        if handler.cancelled_by is None:
            return handler.task.result()  # _call_handler turns every failure into an outcome
        return self._cancelled_outcome(handler)

    def _cancelled_outcome(self, handler: _Handler) -> RunOutcome:
        by = handler.cancelled_by
        if not handler.task.done():
            self._left_behind.add(handler.task)
            handler.task.add_done_callback(self._forget_left_behind)
            return RunOutcome(
                RunStatus.CANCELLED,
                f"cancelled by {by}; the handler did not stop within {self.cancel_grace_s:g} s, "
                "so its run was ended and its slot freed",
            )
        result = None if handler.task.cancelled() else handler.task.result().result
        return RunOutcome(RunStatus.CANCELLED, f"cancelled by {by}", result=result)

    def _forget_left_behind(self, task: asyncio.Task[RunOutcome]) -> None:
        self._left_behind.discard(task)
        if not task.cancelled():
            task.result()  # _call_handler never raises but CancelledError; retrieve it all the same

    async def _call_handler(self, task: TaskRecord, ctx: RunContext) -> RunOutcome:
        """Run the handler under the task's timeout and say how it ended; only a cancellation propagates."""
        try:
            handler = self.registry.get(task.handler)
            async with asyncio.timeout(task.timeout_s):
                result = dict(await handler(ctx))
        except TimeoutError:
            return RunOutcome(RunStatus.TIMED_OUT, f"cancelled after the task's timeout of {task.timeout_s} s")
        except NothingToDo as reason:
            return RunOutcome(RunStatus.SKIPPED, f"skipped: {reason}", empty=True)
        except SkipRun as reason:
            return RunOutcome(RunStatus.SKIPPED, f"skipped: {reason}")
        except AllWorkFailed as exc:
            return RunOutcome(RunStatus.FAILED, exc.message, result=exc.result)
        except Exception as exc:  # a handler's failure is recorded; it never stops the scheduler
            return RunOutcome(RunStatus.FAILED, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        return RunOutcome(RunStatus.SUCCEEDED, result=result)

    def _capture_logs(self, run_id: int) -> None:
        """Keep what this run logs (the capture handler sits on the root logger while any run is in flight)."""
        if self.run_logs.max_chars <= 0:
            return
        root = logging.getLogger()
        if self.run_logs not in root.handlers:
            root.addHandler(self.run_logs)
        self.run_logs.start(run_id)

    def _run_log(self, run_id: int) -> str | None:
        text = self.run_logs.finish(run_id)
        if not self.run_logs.active:
            logging.getLogger().removeHandler(self.run_logs)
        return text

    async def _record_end(
        self, task: TaskRecord, run_id: int, outcome: RunOutcome, trigger: Trigger
    ) -> tuple[RecordedEnd | None, bool]:
        """Free the run's slot, then write its outcome with the other ends of the moment (RunEndWriter);
        returns the end as written and whether a retry of the run was scheduled.

        Until the write commits the run stays `running` and heartbeated; the reaper covers a node that dies.
        """
        end = RunEnd(
            run_id=run_id,
            status=outcome.status,
            finished_at=self.clock.now(),
            error=outcome.error,
            traceback=outcome.traceback,
            result=outcome.result,
            log=self._run_log(run_id),
            keep=keeps_run_row(outcome, trigger, task, keep_all=self.keep_empty_runs),
        )
        self._free_slot(run_id)
        recorded = await self.ends.add(end)
        retried = recorded is not None and await self._retry_if_due(recorded.run)
        if recorded is not None and not retried:
            await self.alert(recorded.run, has_rules=recorded.has_rules)
        return recorded, retried

    def _free_slot(self, run_id: int) -> None:
        """The last handler of an execution returned: its slot may take the next due run at once."""
        execution = self._executions.get(run_id)
        if execution is not None and run_id == execution.run_ids[-1] and not execution.winding_down:
            execution.winding_down = True
            if self.on_slot_free is not None and self.on_slot_free():
                return  # the backlog's next execution took the slot, without a loop step
            self.notifier.notify_nowait()

    async def _retry_if_due(self, run: RunRecord) -> bool:
        """Schedule a retry of a failed or timed-out run if its task has retries left; True if one was scheduled.

        Manual runs are not retried (someone is watching), nor a retry that would start at or
        after the task's next occurrence (that occurrence is the next attempt).
        """
        if run.status not in RETRIED_STATUSES or run.trigger is Trigger.MANUAL:
            return False
        task = await self.store.get_task(run.task_id)
        attempt = run.attempt + 1
        if task is None or attempt > task.max_retries:
            return False
        at = self.clock.now() + timedelta(seconds=retry_delay_s(task, attempt))
        if task.next_run_at is not None and at >= task.next_run_at:
            log.info("run %d of %s is not retried: its next occurrence comes first", run.id, task.name)
            return False
        await self.store.schedule_retry(task.id, run_id=run.id, attempt=attempt, at=at)
        log.warning(
            "run %d of %s %s; retry %d of %d at %s", run.id, task.name, run.status, attempt, task.max_retries, at
        )
        await self.notifier.notify()
        return True

    async def alert(self, run: RunRecord, *, has_rules: bool | None = None) -> None:
        """Apply the task's alert rules to a run that ended (its last attempt: retries come first).

        A task that was succeeding and fails every retry is news once, when the retries are exhausted.
        """
        await self.alerting.run_ended(run, has_rules=has_rules)


def keeps_run_row(outcome: RunOutcome, trigger: Trigger, task: TaskRecord, *, keep_all: bool) -> bool:
    """Whether a run's row is kept: always, but for a scheduled run that found nothing to do.

    That one is counted on its task instead, unless the task (keep_empty_runs) or the
    operator (MEDIABEAT_KEEP_EMPTY_RUNS) asks for such rows. Runs someone started are kept.
    """
    if not outcome.empty or trigger is not Trigger.SCHEDULE:
        return True
    return keep_all or task.keep_empty_runs


def _give_up(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
