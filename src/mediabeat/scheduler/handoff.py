"""Running a task now from a process without a scheduler loop (the CLI): on a live node if there is one.

A node (`serve` with its loop, or `worker`) runs with its own settings, handlers and resources;
a shell does not. So the run is handed over: a run row with no node, which the first node loop
to wake adopts at once. With no live node the run happens in this process, which says so.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from mediabeat.domain.scheduler import NodeState, RunRecord, RunStatus
from mediabeat.scheduler.cluster import ClusterCoordinator
from mediabeat.scheduler.service import SchedulerService

# How often a waiting CLI reads the handed-over run (real seconds).
POLL_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class HandOffPlan:
    """Where a run will happen: on `node_id`, or here when it is None."""

    node_id: str | None


@dataclass(frozen=True, slots=True)
class HandedRun:
    """A finished run and where it ran: `node_id` None means in this process."""

    run: RunRecord
    ran_on: str | None


class RunHandOff:
    """Hands runs to live nodes and waits for them; runs them here when no node is live."""

    def __init__(
        self, *, service: SchedulerService, cluster: ClusterCoordinator, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self.service = service
        self.cluster = cluster
        self.poll_seconds = poll_seconds

    async def plan(self) -> HandOffPlan:
        """A live node other than this process (its heartbeat is fresh), or None: run here."""
        nodes = await self.cluster.list_nodes()
        live = [n for n in nodes if n.state is NodeState.RUNNING and n.id != self.service.node_id]
        return HandOffPlan(node_id=live[0].id if live else None)

    async def run(self, name: str, *, triggered_by: str | None, plan: HandOffPlan) -> HandedRun:
        """Run the task as planned and wait for the end (OverlapForbidden, TaskNotFound, UnknownHandler)."""
        task = await self.service.get_task_by_name(name)
        if plan.node_id is None:
            self.service.runner.require_handler(task)
            async with self.service.heartbeating():  # no loop here heartbeats the run: the service does
                run = await self.service.run_now_and_wait(name, triggered_by=triggered_by)
            return HandedRun(run=run, ran_on=None)
        run_id = await self.service.runner.hand_over(task, triggered_by=triggered_by)
        return await self._wait(run_id)

    async def _wait(self, run_id: int) -> HandedRun:
        """Wait for a handed-over run; take it back if no node adopts it in time, reap it if its node dies."""
        stale_after = self.service.timings.stale_after
        while True:
            run = await self.service.queries.require_run(run_id)
            if run.status is not RunStatus.RUNNING:
                return HandedRun(run=run, ran_on=run.node_id)
            quiet = self.service.clock.now() - (run.heartbeat_at or run.started_at)
            if run.node_id is None and quiet > stale_after / 2:
                return await self._take_back(run_id)
            if run.node_id is not None and quiet > stale_after:
                await self.service.reap_abandoned()  # its node died, and maybe with it the reaper
            await asyncio.sleep(self.poll_seconds)

    async def _take_back(self, run_id: int) -> HandedRun:
        """No node adopted the run (it stopped meanwhile, or lacks the handler): run it here."""
        async with self.service.heartbeating():
            if await self.service.adopt_handed_runs([run_id]):
                return HandedRun(run=await self.service.wait_for_run(run_id), ran_on=None)
        return await self._wait(run_id)  # a node adopted it after all
