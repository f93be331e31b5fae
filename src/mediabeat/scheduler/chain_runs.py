"""Starting chained runs when a run ends: the tasks that run after it succeeded (a fan-in's last) or failed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from mediabeat.clock import Clock
from mediabeat.db.stores.chains import ChainStore
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.domain.scheduler import ChainKind, ClaimedRuns, RunStatus, TaskRecord, Trigger
from mediabeat.scheduler.notify import ChangeNotifier
from mediabeat.scheduler.registry import HandlerRegistry

log = logging.getLogger("mediabeat.scheduler")


class ChainStarter:
    """Starts the chained runs an ended run calls for, exactly once across nodes (ChainStore.start decides).

    A chained task whose handler this node lacks is handed over (node_id NULL): a node that has
    it adopts the run, as it would a `tasks run` from a shell.
    """

    def __init__(
        self,
        *,
        store: SchedulerStore,
        chains: ChainStore,
        registry: HandlerRegistry,
        clock: Clock,
        node_id: str,
        notifier: ChangeNotifier,
        launch: Callable[[ClaimedRuns, Trigger], None],
    ) -> None:
        self.store = store
        self.chains = chains
        self.registry = registry
        self.clock = clock
        self.node_id = node_id
        self.notifier = notifier
        self.launch = launch

    async def after_run(self, upstream: TaskRecord, run_id: int, scheduled_for: datetime, kind: ChainKind) -> None:
        """Start the tasks that run after `upstream`'s run `run_id` ended as `kind` says."""
        try:
            if kind is ChainKind.SUCCESS:
                ids = await self.chains.count_success(upstream.id, run_id)
            else:
                ids = await self.chains.failure_dependents(upstream.id)
            tasks = [t for t in await self.store.get_tasks(ids) if t.enabled]
            paused = bool(tasks) and (await self.store.get_pause()).paused
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            log.error("could not look up the tasks that run after %s: %s", upstream.name, exc)
            return
        if paused:
            names = ", ".join(t.name for t in tasks)
            log.info("the scheduler is paused: not starting %s after %s", names, upstream.name)
            return
        for task in tasks:
            try:
                await self._start(task, upstream, run_id, scheduled_for, kind)
            except (sa.exc.SQLAlchemyError, OSError) as exc:
                log.error("could not start %s after %s: %s", task.name, upstream.name, exc)

    async def _start(
        self, task: TaskRecord, upstream: TaskRecord, run_id: int, scheduled_for: datetime, kind: ChainKind
    ) -> None:
        here = task.handler in self.registry
        failed = " failed" if kind is ChainKind.FAILURE else ""
        started = await self.chains.start(
            task,
            kind=kind,
            upstream_id=upstream.id,
            upstream_run_id=run_id,
            now=self.clock.now(),
            node_id=self.node_id if here else None,
            triggered_by=f"{upstream.name} run {run_id}{failed}",
            scheduled_for=scheduled_for,
        )
        if started is None:
            if kind is ChainKind.SUCCESS:
                log.debug("%s waits for the other tasks it runs after", task.name)
            return
        if started.status is RunStatus.SKIPPED:
            log.warning("not starting %s after %s: %s", task.name, upstream.name, started.reason)
        elif here:
            self.launch(
                ClaimedRuns(task=task, run_ids=[started.run_id], scheduled_for=[scheduled_for]), Trigger.DEPENDENCY
            )
        else:
            log.info("handing run %d of %s to a node that has handler %r", started.run_id, task.name, task.handler)
            await self.notifier.notify()
