"""monitor-deliveries: match what the crawl's hooks left, then send due webhooks, mail, digests and spike alerts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediabeat.monitors.engine import MonitorEngine
from mediabeat.tasks.base import RunContext


class MonitorDeliveriesTask:
    """Every minute: catch-up matching, then plan (cool-downs, digests), spikes, and one attempt per due delivery."""

    def __init__(self, engine: MonitorEngine) -> None:
        self.engine = engine

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        caught_up = await self.engine.matcher.catch_up_all()
        deliveries = self.engine.deliveries
        planned = await deliveries.plan(ctx.now)
        spikes = await deliveries.check_spikes(ctx.now)
        sent, failed = await deliveries.send_due(ctx.now)
        ctx.log.info(
            "monitor-deliveries: %d caught up, %d planned, %d sent, %d failed", caught_up, planned, sent, failed
        )
        return {"matches_caught_up": caught_up, "planned": planned, "spikes": spikes, "sent": sent, "failed": failed}

    async def aclose(self) -> None:
        await self.engine.drain()
