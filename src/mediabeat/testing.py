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
from mediabeat.scheduler.task_alerting import OwnChannelSetup
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
    own_alert_channels: OwnChannelSetup | None = None,
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
        own_alert_channels=own_alert_channels,
    )
    loop = SchedulerLoop(service=service, clock=clock, tick_seconds=tick_seconds, heartbeat_seconds=5)
    return service, loop


async def seed_api_fuzz_target(database_url: str, *, token_name: str) -> str:
    """Prepare a migrated database for an API fuzzer and return an admin's API token.

    Only nightly-cleanup is left among the tasks, so no fuzzed request can make a crawler task fetch
    a fuzzed feed URL. Used by the schema test and by `make fuzz`.
    """
    import sqlalchemy as sa

    from mediabeat.app import build_services  # the composition root, imported only by those who seed
    from mediabeat.db.tables import scheduler_task_runs, scheduler_tasks
    from mediabeat.settings import load_settings

    services = build_services(load_settings(database_url=database_url, enable_scheduler=False))
    auth = services.auth
    try:
        async with services.db.write() as conn:
            await conn.execute(sa.delete(scheduler_task_runs))
            await conn.execute(sa.delete(scheduler_tasks).where(scheduler_tasks.c.handler != "nightly_cleanup"))
        org_id = await auth.org_id("fuzz-org", create=True)
        admin = await auth.create_user("fuzz@example.test", role="admin", org_id=org_id, password="fuzz-pass-123456")
        token, _ = await auth.create_token(admin, token_name)
        return token
    finally:
        await services.close()
