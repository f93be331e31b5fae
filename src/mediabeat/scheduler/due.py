"""The scheduled path: give tasks their first due time, claim what is due now, and hand it to the executor."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from mediabeat.clock import Clock
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.domain.scheduler import TaskRecord, Trigger
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
        claim_batch: int,
        max_concurrent: int,
    ) -> None:
        self.store = store
        self.executor = executor
        self.clock = clock
        self.misfire_grace = misfire_grace
        self.max_catch_up = max_catch_up
        self.claim_batch = claim_batch
        self.max_concurrent = max_concurrent
        # The last claim took as many tasks as it was allowed: more may be due right now.
        self.more_due = False

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

    async def execute_due_tasks(self) -> int:
        """Claim the due occurrences this node has room for and start their handlers; returns how many runs started.

        A claim of one task counts as one execution, its catch-up occurrences run one after another.
        When more is due than there are free slots, higher-priority tasks start first, then the
        earlier due (the claim orders by both). Ends still being written are written first, so
        that the claim sees which runs are still running (overlap policy).
        """
        free = self.free_slots
        if free == 0:
            return 0
        await self.executor.flush_ends()
        now = self.clock.now()
        limit = min(self.claim_batch, free)
        outcome = await self.store.claim_due(
            now=now, node_id=self.executor.node_id, limit=limit, plan=lambda t: self.plan(t, now)
        )
        self.more_due = outcome.examined == limit
        for claim in outcome.claimed:
            self.executor.launch(claim, trigger=Trigger.SCHEDULE)
        return sum(len(c.run_ids) for c in outcome.claimed) + await self.execute_due_retries()

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
