"""Cluster membership and leader-only maintenance, with PostgreSQL (or SQLite) as the coordinator.

Every node registers in scheduler_nodes and heartbeats. Scheduling needs no leader: each
occurrence is decided by the unique run row. The duties that must run on exactly one node
at a time (the reaper of dead nodes' runs, the release of expired crawl-job leases, the
pruning of old node rows, the folding of run-count deltas, the
check of late, missing and slow alert rules) go to whichever node holds the
`maintenance` lease row. The holder renews it at every heartbeat; a node killed with -9 stops renewing, and its lease
expires after three heartbeats, so another node takes over.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import timedelta

from mediabeat import __version__
from mediabeat.clock import Clock
from mediabeat.db.stores.jobs import JobStore
from mediabeat.db.stores.nodes import LeaseStore, NodeStore
from mediabeat.db.stores.stats import StatsStore
from mediabeat.domain.scheduler import NodeRecord
from mediabeat.scheduler.service import SchedulerService

log = logging.getLogger("mediabeat.cluster")

MAINTENANCE_LEASE = "maintenance"
LEASE_HEARTBEATS = 3
NODE_RETENTION = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class MaintenanceResult:
    """What one maintenance step did on this node."""

    leader: bool
    reaped_runs: int = 0
    released_jobs: int = 0
    pruned_nodes: int = 0
    folded_counts: int = 0
    alerts: int = 0


class ClusterCoordinator:
    """Registers this node, heartbeats it, and runs the singleton duties while it holds the lease."""

    def __init__(
        self,
        *,
        nodes: NodeStore,
        leases: LeaseStore,
        jobs: JobStore,
        counts: StatsStore,
        service: SchedulerService,
        clock: Clock,
        role: str,
        heartbeat_seconds: float,
        dead_after: timedelta,
    ) -> None:
        self.nodes = nodes
        self.leases = leases
        self.jobs = jobs
        self.counts = counts
        self.service = service
        self.clock = clock
        self.role = role
        self.heartbeat_seconds = heartbeat_seconds
        self.dead_after = dead_after
        self.lease_ttl = timedelta(seconds=heartbeat_seconds * LEASE_HEARTBEATS)
        self.is_leader = False
        self._registered = False

    @property
    def node_id(self) -> str:
        return self.service.node_id

    async def register(self) -> None:
        await self.nodes.register(
            node_id=self.node_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
            role=self.role,
            now=self.clock.now(),
        )
        self._registered = True
        log.info("node %s registered (%s)", self.node_id, self.role)

    async def heartbeat(self) -> None:
        """This node and its running runs are alive."""
        if not self._registered or not await self.nodes.heartbeat(self.node_id, self.clock.now()):
            await self.register()
        await self.service.heartbeat()

    async def maintain(self) -> MaintenanceResult:
        """Take or renew the maintenance lease; while held, reap, release expired job leases, prune."""
        now = self.clock.now()
        leader = await self.leases.acquire(MAINTENANCE_LEASE, holder=self.node_id, now=now, ttl=self.lease_ttl)
        if leader != self.is_leader:
            log.info("node %s %s the maintenance lease", self.node_id, "holds" if leader else "lost")
            self.is_leader = leader
        if not leader:
            return MaintenanceResult(leader=False)
        reaped = await self.service.reap_abandoned()
        released = await self.jobs.release_expired(now=now)
        if released:
            log.warning("%d crawl job(s) whose lease ran out went back to the queue", released)
        pruned = await self.nodes.prune(older_than=now - NODE_RETENTION)
        folded = await self.counts.fold_run_counts()
        alerts = await self.service.check_alerts_if_due()  # late, missing, slow: each alert is claimed once anyway
        return MaintenanceResult(
            leader=True,
            reaped_runs=len(reaped),
            released_jobs=released,
            pruned_nodes=pruned,
            folded_counts=folded,
            alerts=alerts,
        )

    async def step(self) -> MaintenanceResult:
        await self.heartbeat()
        return await self.maintain()

    async def stop(self) -> None:
        """A clean shutdown: say so, and hand the lease on at once instead of letting it expire."""
        now = self.clock.now()
        if self.is_leader:
            await self.leases.release(MAINTENANCE_LEASE, holder=self.node_id)
            self.is_leader = False
        if self._registered:
            await self.nodes.mark_stopped(self.node_id, now)

    async def list_nodes(self) -> list[NodeRecord]:
        """Every known node with its state (running, stopped or dead), for the API, dashboard and CLI."""
        return await self.nodes.list_nodes(now=self.clock.now(), dead_after=self.dead_after)

    async def leader(self) -> str | None:
        """The node that holds the maintenance lease now."""
        return await self.leases.holder(MAINTENANCE_LEASE, now=self.clock.now())
