"""Keeping runs alive: heartbeats for this node's runs, and abandoning the runs of nodes that died."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import sqlalchemy as sa

from mediabeat.clock import Clock
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.domain.scheduler import RunRecord
from mediabeat.scheduler.runner import RunExecutor

log = logging.getLogger("mediabeat.scheduler")

MIN_HEARTBEAT_SLEEP_S = 0.05


class RunLiveness:
    """Heartbeats and the reaper. Uses the maintenance store: a busy main pool must not make a node look dead."""

    def __init__(
        self,
        *,
        store: SchedulerStore,
        executor: RunExecutor,
        clock: Clock,
        heartbeat: timedelta,
        stale_after: timedelta,
    ) -> None:
        self.store = store
        self.executor = executor
        self.clock = clock
        self.heartbeat_interval = heartbeat
        self.stale_after = stale_after

    async def heartbeat(self, *, settle_orphans: bool = True) -> None:
        """Tell the database that this node's runs are alive, cancel those an operator asked to cancel,
        and abandon those it only appears to hold.

        Those are runs recorded under this node id that it is not executing and that nobody
        has heartbeated for two beats: a claim committed as the connection broke, or runs of
        an earlier process with the same MEDIABEAT_NODE_ID. A process with no scheduler loop
        (the CLI) only heartbeats.
        """
        active = set(self.executor.active_run_ids)
        now = self.clock.now()
        cancel_requests = await self.store.heartbeat_runs(active, now)
        if cancel_requests:
            self.executor.apply_cancel_requests(cancel_requests)
        if not settle_orphans:
            return
        orphans = await self.store.abandon_orphans(
            node_id=self.executor.node_id,
            executing=active,
            quiet_since=now - 2 * self.heartbeat_interval,
            now=now,
        )
        for run in orphans:
            log.warning("run %d of %s abandoned: %s", run.id, run.task, run.error)
            await self.executor.alert(run)

    @contextlib.asynccontextmanager
    async def heartbeating(self) -> AsyncIterator[None]:
        """Heartbeat this node's runs every heartbeat interval while the block runs.

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
        interval = max(self.clock.real_seconds(self.heartbeat_interval.total_seconds()), MIN_HEARTBEAT_SLEEP_S)
        while True:
            await asyncio.sleep(interval)
            if not self.executor.active_run_ids:
                continue
            try:
                await self.heartbeat(settle_orphans=False)
            except (sa.exc.SQLAlchemyError, OSError) as exc:
                log.error("could not heartbeat runs %s: %s", self.executor.active_run_ids, exc)

    async def reap_abandoned(self) -> list[RunRecord]:
        """Mark runs whose node died `abandoned`, so nothing stays running forever."""
        reaped = await self.store.reap_abandoned(now=self.clock.now(), stale_after=self.stale_after)
        for run in reaped:
            log.warning("run %d of %s abandoned: %s", run.id, run.task, run.error)
            await self.executor.alert(run)
        return reaped
