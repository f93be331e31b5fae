"""The scheduled path: give tasks their first due time, claim what is due now, and hand it to the executor.

A claim takes the free slots' worth of due tasks and, beyond them, up to `backlog` more as
`queued` runs that start here as slots free (scheduler/backlog.py has the rules).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from datetime import datetime, timedelta

from mediabeat.clock import Clock
from mediabeat.db.stores.queued_runs import QueuedRunStore
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.domain.scheduler import ClaimedRuns, TaskRecord, Trigger
from mediabeat.schedule import CronError, DuePlan, initial_next_run, parse_schedule, plan_due
from mediabeat.scheduler.admin import next_after
from mediabeat.scheduler.runner import RunExecutor

log = logging.getLogger("mediabeat.scheduler")


class DueRuns:
    """Claims due occurrences, as many as this node has room for, and starts them."""

    def __init__(
        self,
        *,
        store: SchedulerStore,
        executor: RunExecutor,
        clock: Clock,
        misfire_grace: timedelta,
        max_catch_up: int,
        stale_after: timedelta = timedelta(seconds=20),
        claim_batch: int,
        max_concurrent: int,
        backlog: int = 0,
        backlog_hold: timedelta = timedelta(seconds=5),
    ) -> None:
        self.store = store
        self.executor = executor
        self.clock = clock
        self.misfire_grace = misfire_grace
        self.max_catch_up = max_catch_up
        self.claim_batch = claim_batch
        self.max_concurrent = max_concurrent
        self.backlog_size = backlog
        # Held longer than this, a queued run goes back to the cluster; never past the misfire grace, and
        # well within the time after which the reaper gives back the queued runs of a silent node.
        self.backlog_hold = min(backlog_hold, misfire_grace, stale_after / 2)
        self.queued = QueuedRunStore(store.db)
        # The last claim took as many tasks as it was allowed: more may be due right now.
        self.more_due = False
        # The pause as this node last saw it: while set, nothing starts from the backlog.
        self.paused = False
        executor.on_slot_free = self._slot_freed
        # Backlog starts run in a context of their own, not in that of the run whose slot they take.
        self._context = contextvars.copy_context()

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
        """How many more scheduled executions this node may start (max_concurrent in all)."""
        busy = self.executor.executing_count(Trigger.SCHEDULE) + self.executor.executing_count(Trigger.RETRY)
        return max(0, self.max_concurrent - busy)

    @property
    def backlog(self) -> int:
        """How many executions this node holds queued."""
        return len(self.executor.backlog)

    def start_backlog(self) -> int:
        """Start queued executions while slots are free (not while paused); returns how many runs started."""
        started = 0
        if self._held_too_long():
            # Not one more start from a backlog that must go back (the reaper may be giving it to
            # another node): the loop gives it back first.
            self.executor.notifier.notify_nowait()
            return 0
        while not self.paused and self.free_slots > 0:
            claim = self.executor.backlog.pop()
            if claim is None:
                break
            self.executor.launch(claim, trigger=Trigger.SCHEDULE)
            started += len(claim.run_ids)
        return started

    def _slot_freed(self) -> bool:
        """A slot freed: start the backlog's next execution at once (True), or let the loop claim more (False)."""
        if self.paused or not len(self.executor.backlog) or self._held_too_long():
            return False
        asyncio.get_running_loop().call_soon(self.start_backlog, context=self._context.copy())
        return True

    async def execute_due_tasks(self) -> int:
        """Claim the due occurrences this node has room for and start their handlers; returns how many runs started.

        A claim of one task counts as one execution, its catch-up occurrences run one after another.
        When more is due than there are free slots, higher-priority tasks start first, then the
        earlier due (the claim orders by both, and so does the backlog). The free slots take, in
        order: the backlog, runs given back by other nodes, then a new claim, whose tasks beyond the
        free slots are queued here (up to `backlog_size`). Ends still being written are written
        first, so that the claim sees which runs are still running (overlap policy).
        """
        self.paused = False
        await self.give_back_held()
        started = self.start_backlog()
        free = self.free_slots
        if free == 0:
            return started
        now = self.clock.now()
        adopted = await self.queued.adopt_given_back(
            node_id=self.executor.node_id, now=now, limit=free, grace=self.misfire_grace
        )
        for claim in adopted:
            self.executor.launch(claim, trigger=Trigger.SCHEDULE)
        started += sum(len(c.run_ids) for c in adopted)
        free = self.free_slots
        if free == 0:
            return started
        await self.executor.flush_ends()
        limit = min(self.claim_batch, free + max(0, self.backlog_size - self.backlog))
        outcome = await self.store.claim_due(
            now=now, node_id=self.executor.node_id, limit=limit, plan=lambda t: self.plan(t, now), start_now=free
        )
        self.more_due = outcome.examined == limit
        for claim in outcome.claimed:
            if claim.queued:
                self.executor.backlog.push(claim, now)
            else:
                self.executor.launch(claim, trigger=Trigger.SCHEDULE)
                started += len(claim.run_ids)
        started += self.start_backlog()  # the slots of claims another node won
        return started + await self.execute_due_retries()

    async def give_back_held(self) -> int:
        """Give back to the cluster what this node claimed longer ago than the backlog hold and has not started."""
        oldest = self.executor.backlog.oldest_claimed_at
        if oldest is None or self.clock.now() - oldest < self.backlog_hold:
            return 0
        held = self.executor.backlog.drain(claimed_by=self.clock.now() - self.backlog_hold)
        return await self._give_back(held, "held longer than the backlog allows")

    async def give_back_backlog(self, why: str) -> int:
        """Give back every queued run of this node (the scheduler is paused, or the node stops)."""
        self.paused = True
        return await self._give_back(self.executor.backlog.drain(), why)

    async def _give_back(self, claims: list[ClaimedRuns], why: str) -> int:
        if not claims:
            return 0
        run_ids = [run_id for claim in claims for run_id in claim.run_ids]
        try:
            given = await self.store.give_back(run_ids, node_id=self.executor.node_id, now=self.clock.now())
        except Exception:
            for claim in claims:  # kept, and tried again at the next step (they are still ours in the database)
                self.executor.backlog.push(claim, self.clock.now())
            raise
        log.info("gave back %d queued run(s) to the cluster: %s", given, why)
        await self.executor.notifier.notify()  # other nodes with free slots take them
        return given

    def _held_too_long(self) -> bool:
        oldest = self.executor.backlog.oldest_claimed_at
        return oldest is not None and self.clock.now() - oldest >= self.backlog_hold

    def backlog_due_in(self) -> float | None:
        """Clock seconds until the oldest queued execution must be given back (None: the backlog is empty)."""
        oldest = self.executor.backlog.oldest_claimed_at
        if oldest is None:
            return None
        return max(0.0, (oldest + self.backlog_hold - self.clock.now()).total_seconds())

    async def execute_due_retries(self) -> int:
        """Start the retries of failed runs that are due (they count against max_concurrent as scheduled runs)."""
        free = self.free_slots
        if free == 0:
            return 0
        claims = await self.store.claim_retries(
            now=self.clock.now(), node_id=self.executor.node_id, limit=min(self.claim_batch, free)
        )
        for claim in claims:
            self.executor.launch(claim, trigger=Trigger.RETRY)
        return len(claims)

    def plan(self, task: TaskRecord, now: datetime) -> DuePlan:
        """Which of a due task's occurrences run now: the misfire policy decides (schedule.policy.plan_due)."""
        try:
            schedule = parse_schedule(task.cron, task.timezone)
        except CronError as exc:
            log.error("task %s has an unusable schedule and will not run: %s", task.name, exc)
            return DuePlan(next_run_at=None)
        assert task.next_run_at is not None  # the claim query selects only due tasks
        if task.last_run_at is None and task.next_run_at <= now:
            # Never run: due at start-up whatever the misfire policy, as in the product note.
            return DuePlan(run=[task.next_run_at], next_run_at=next_after(schedule, now))
        return plan_due(
            schedule,
            next_run_at=task.next_run_at,
            now=now,
            misfire=task.misfire_policy,
            grace=self.misfire_grace,
            max_catch_up=self.max_catch_up,
        )

    async def next_due_at(self) -> datetime | None:
        return await self.store.earliest_next_run()
