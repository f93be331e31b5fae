"""The scheduler loop: sleep until the next due task (capped by the tick), claim, start, repeat.

Each step reads the clock once and returns what it found, so tests drive it step by step
with a fake clock. Signal handlers only set the stop event.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from mediabeat.clock import Clock
from mediabeat.db.engine import describe_db_error
from mediabeat.scheduler.cluster import ClusterCoordinator
from mediabeat.scheduler.pause import PAUSED_POLL_SECONDS
from mediabeat.scheduler.service import SchedulerService

log = logging.getLogger("mediabeat.scheduler")

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0
SHUTDOWN_GRACE_S = 30.0


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step did, and how long the loop may sleep before the next."""

    started: int
    sleep_seconds: float


class SchedulerLoop:
    """Drives a SchedulerService: due tasks on time, heartbeats, and the reaper."""

    def __init__(
        self,
        *,
        service: SchedulerService,
        clock: Clock,
        tick_seconds: float,
        heartbeat_seconds: float,
        database_url: str = "",
        cluster: ClusterCoordinator | None = None,
    ) -> None:
        self.service = service
        self.cluster = cluster
        self.clock = clock
        self.tick_seconds = tick_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.database_url = database_url
        self._prepared = False

    async def step(self) -> StepResult:
        """Claim and start what is due now; say how long to sleep until the next due time."""
        if not self._prepared:
            await self.service.prepare_schedules()
            self._prepared = True
        if self.service.active_run_ids:
            await self.service.check_cancel_requests()  # a cancel asked on another node wakes this loop
        if (await self.service.observe_pause()).paused:
            # Nothing scheduled starts (the claim checks the row too); handed-over manual runs still do.
            # The backlog goes back to the cluster: on resume, any node starts it, per the misfire policy.
            await self.service.due.give_back_backlog("the scheduler is paused")
            started = await self.service.adopt_handed_runs()
            return StepResult(started=started, sleep_seconds=self._paused_poll())
        started = await self.service.execute_due_tasks()
        started += await self.service.adopt_handed_runs()  # `tasks run` from a shell hands its run to a node
        if self.service.free_slots == 0:
            # An ending run wakes the loop; a backlog must be given back in time if no slot frees.
            return StepResult(started=started, sleep_seconds=self._backlog_cap(self.tick_seconds))
        if self.service.due.more_due:
            # The claim took all it could: more may be due (a burst wider than the run limit). Look
            # again at once instead of asking for the next due time, a read per wave saved.
            return StepResult(started=started, sleep_seconds=0.0)
        next_due = await self.service.next_due_at()
        return StepResult(started=started, sleep_seconds=self._backlog_cap(self._sleep_until(next_due)))

    def _backlog_cap(self, seconds: float) -> float:
        due_in = self.service.due.backlog_due_in()
        return seconds if due_in is None else min(seconds, due_in)

    def _paused_poll(self) -> float:
        """PAUSED_POLL_SECONDS of real time, in clock seconds (a simulated clock may run faster)."""
        ratio = self.clock.real_seconds(1.0)
        return min(self.tick_seconds, PAUSED_POLL_SECONDS / ratio) if ratio > 0 else self.tick_seconds

    def _sleep_until(self, next_due: datetime | None) -> float:
        if next_due is None:
            return self.tick_seconds
        return max(0.0, min(self.tick_seconds, (next_due - self.clock.now()).total_seconds()))

    async def maintenance_step(self) -> int:
        """Heartbeat this node and its runs, reap dead nodes' runs and check the alert rules (late, missing,
        slow); returns how many runs were reaped.

        In a cluster only the holder of the maintenance lease reaps (and returns expired
        crawl-job leases to the queue, and checks the alert rules); without one, every loop does.
        """
        if self.cluster is not None:
            return (await self.cluster.step()).reaped_runs
        await self.service.heartbeat()
        reaped = len(await self.service.reap_abandoned())
        await self.service.check_alerts_if_due()
        return reaped

    async def run(self, stop: asyncio.Event) -> None:
        """Loop until `stop` is set, then let in-flight runs finish (up to a grace period)."""
        maintenance = asyncio.create_task(self._maintenance_loop(stop), name="mediabeat-maintenance")
        backoff = BACKOFF_START_S
        try:
            while not stop.is_set():
                try:
                    result = await self.step()
                    backoff = BACKOFF_START_S
                    real_sleep = self.clock.real_seconds(result.sleep_seconds)
                except Exception as exc:  # nothing stops the loop: not the database, not a bug in one step
                    self._log_failure("scheduler step failed, retrying in %.1f s", backoff, exc)
                    real_sleep, backoff = backoff, min(BACKOFF_MAX_S, backoff * 2)
                await self._sleep(real_sleep, stop)
        finally:
            try:  # what this node claimed and has not started, another node may start
                await self.service.due.give_back_backlog("the node is stopping")
            except (sa.exc.SQLAlchemyError, OSError) as exc:
                log.error("could not give back the queued runs; the reaper will: %s", self._describe(exc))
            await self.service.wait_idle(within=SHUTDOWN_GRACE_S)
            await self.service.cancel_all()
            stop.set()
            await maintenance
            if self.cluster is not None:
                try:
                    await self.cluster.stop()
                except (sa.exc.SQLAlchemyError, OSError) as exc:
                    log.error("could not mark node %s stopped: %s", self.service.node_id, self._describe(exc))

    async def _maintenance_loop(self, stop: asyncio.Event) -> None:
        seconds = self.heartbeat_seconds
        if self.cluster is not None:
            seconds = min(seconds, self.cluster.heartbeat_seconds)
        interval = self.clock.real_seconds(seconds)
        while True:
            try:
                await self.maintenance_step()
            except Exception as exc:  # a node that stops heartbeating looks dead: keep beating whatever happens
                self._log_failure("heartbeat failed, retrying in %.1f s", interval, exc)
            if stop.is_set():
                if not self.service.active_run_ids:
                    return
                await asyncio.sleep(interval)  # runs still finishing after a stop keep heartbeating
            else:
                await self._wait_or_stop(stop, interval)

    async def _sleep(self, seconds: float, stop: asyncio.Event) -> None:
        """Sleep up to `seconds` of real time, waking early for a task change or a stop."""
        if seconds <= 0 or stop.is_set():
            await asyncio.sleep(0)
            return
        stopper = asyncio.create_task(stop.wait())
        waker = asyncio.create_task(self.service.notifier.wait(seconds))
        try:
            await asyncio.wait({stopper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (stopper, waker):
                pending.cancel()

    async def _wait_or_stop(self, stop: asyncio.Event, seconds: float) -> None:
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except TimeoutError:
            return

    def _log_failure(self, message: str, retry_in: float, exc: Exception) -> None:
        """A database that cannot be reached is one line; anything else is a bug: log its traceback."""
        if isinstance(exc, (sa.exc.SQLAlchemyError, OSError)):
            log.error(message + ": %s", retry_in, self._describe(exc))
        else:
            log.exception(message + ": unexpected %s: %s", retry_in, type(exc).__name__, exc)

    def _describe(self, exc: BaseException) -> str:
        return describe_db_error(self.database_url, exc) if self.database_url else str(exc)
