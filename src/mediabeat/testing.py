"""Fakes for tests and simulations: task handlers whose behaviour a test controls, and a scheduler wired to them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from mediabeat.clock import Clock
from mediabeat.db.engine import Database
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.db.stores.stats import StatsStore
from mediabeat.scheduler.alerts import RunAlerts
from mediabeat.scheduler.loop import SchedulerLoop
from mediabeat.scheduler.registry import HandlerRegistry
from mediabeat.scheduler.service import SchedulerService, SchedulerTimings
from mediabeat.tasks.base import RunContext, TaskHandler


class RecordingHandler:
    """Succeeds at once and remembers every run it was given."""

    def __init__(self) -> None:
        self.calls: list[RunContext] = []

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        self.calls.append(ctx)
        return {"calls": len(self.calls)}

    @property
    def scheduled_for(self) -> list[datetime]:
        return [c.scheduled_for for c in self.calls]


class FailingHandler:
    """Raises the error it was built with."""

    def __init__(self, message: str = "the feed server exploded") -> None:
        self.message = message
        self.calls = 0

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        self.calls += 1
        raise RuntimeError(self.message)


class BlockingHandler:
    """Runs until the test calls release(); `started` is set once a run is under way."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self._release = asyncio.Event()
        self.calls = 0

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        self.calls += 1
        self.started.set()
        await self._release.wait()
        return {"released": True}

    def release(self) -> None:
        self._release.set()


def build_test_scheduler(
    db: Database,
    *,
    clock: Clock,
    handlers: Mapping[str, TaskHandler],
    node_id: str = "test-node",
    timings: SchedulerTimings | None = None,
    tick_seconds: float = 60.0,
    alerts: RunAlerts | None = None,
) -> tuple[SchedulerService, SchedulerLoop]:
    """A SchedulerService and loop on `db` whose registry holds exactly `handlers`."""
    registry = HandlerRegistry()
    for name, handler in handlers.items():
        registry.register(name, handler)
    service = SchedulerService(
        store=SchedulerStore(db),
        stats_store=StatsStore(db),
        registry=registry,
        clock=clock,
        node_id=node_id,
        timings=timings or SchedulerTimings(stale_after=timedelta(seconds=20)),
        alerts=alerts,
    )
    loop = SchedulerLoop(service=service, clock=clock, tick_seconds=tick_seconds, heartbeat_seconds=5)
    return service, loop
