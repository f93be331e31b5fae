"""Read-only questions about the scheduler: tasks, runs, statistics, nodes and upcoming fire times."""

from __future__ import annotations

import itertools
from datetime import datetime

from mediabeat.clock import Clock
from mediabeat.db.stores.metrics import MetricsStore
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.db.stores.stats import StatsStore
from mediabeat.domain.ids import MAX_ID, clamp_id
from mediabeat.domain.metrics import MetricsSnapshot
from mediabeat.domain.scheduler import (
    RunFilter,
    RunNotFound,
    RunPoint,
    RunRecord,
    SchedulerStats,
    TaskNotFound,
    TaskRecord,
)
from mediabeat.schedule import CronSchedule, parse_schedule
from mediabeat.scheduler.registry import HandlerRegistry


class SchedulerQueries:
    """Answers for the API, the dashboard, the CLI and /metrics. Ids out of range name no row."""

    def __init__(
        self,
        *,
        store: SchedulerStore,
        stats_store: StatsStore,
        registry: HandlerRegistry,
        clock: Clock,
        metrics_store: MetricsStore | None = None,
    ) -> None:
        self.store = store
        self.stats_store = stats_store
        self.metrics_store = metrics_store or MetricsStore(store.db)
        self.registry = registry
        self.clock = clock

    async def list_tasks(self) -> list[TaskRecord]:
        return await self.store.list_tasks()

    async def get_task(self, task_id: int) -> TaskRecord:
        task = await self.store.get_task(task_id) if 1 <= task_id <= MAX_ID else None
        if task is None:
            raise TaskNotFound(f"no task with id {task_id}")
        return task

    async def get_task_by_name(self, name: str) -> TaskRecord:
        task = await self.store.get_task_by_name(name)
        if task is None:
            raise TaskNotFound(f"no task named {name!r}")
        return task

    def handler_names(self) -> list[str]:
        """The handlers a task can use (the task templates this process knows)."""
        return self.registry.names()

    def describe_handler(self, name: str) -> str:
        return self.registry.describe(name)

    async def upcoming(self, task: TaskRecord, count: int) -> list[datetime]:
        """The next `count` fire times of a task, in its own time zone."""
        return self.next_fires(parse_schedule(task.cron, task.timezone), count)

    def next_fires(self, schedule: CronSchedule, count: int) -> list[datetime]:
        """The next `count` fire times of a schedule from now, in its time zone."""
        return list(itertools.islice(schedule.fire_times(self.clock.now()), count))

    async def list_runs(
        self, filters: RunFilter | None = None, *, limit: int = 50, before_id: int | None = None
    ) -> list[RunRecord]:
        """Runs, newest first; a before_id past the largest id pages from the newest."""
        bound = clamp_id(before_id) if before_id is not None else None
        return await self.store.list_runs(filters or RunFilter(), limit=limit, before_id=bound)

    async def recent_runs(self, task_ids: list[int], *, per_task: int) -> dict[int, list[RunPoint]]:
        """Each task's newest `per_task` runs, oldest first: the sparklines and the duration chart."""
        return await self.store.recent_runs(task_ids, per_task=per_task)

    async def get_run(self, run_id: int) -> RunRecord | None:
        return await self.store.get_run(run_id) if 1 <= run_id <= MAX_ID else None

    async def require_run(self, run_id: int) -> RunRecord:
        run = await self.get_run(run_id)
        if run is None:
            raise RunNotFound(f"no run with id {run_id}")
        return run

    async def stats(self) -> SchedulerStats:
        return await self.stats_store.scheduler_stats(self.clock.now())

    async def metrics_snapshot(self) -> MetricsSnapshot:
        """Runs per task and status, each task's last success, the crawl queue and feeds by state."""
        return await self.metrics_store.snapshot()
