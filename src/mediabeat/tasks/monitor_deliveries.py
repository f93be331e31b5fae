"""monitor-deliveries: place and match what the crawl's hooks left, then send due webhooks, mail, digests and spikes.

What a crawl hook left (its process died between storing a batch and its hooks, or a hook
failed) is caught up here, every minute, on whichever node runs the task: story clusters from
their "not yet clustered" markers, monitor matches from their watermark.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediabeat.monitors.engine import MonitorEngine
from mediabeat.stories.clusterer import StoryClusterer
from mediabeat.tasks.base import RunContext


class MonitorDeliveriesTask:
    """Every minute: the story sweep, catch-up matching, then plan (cool-downs, digests), spikes, and due deliveries."""

    def __init__(self, engine: MonitorEngine, *, stories: StoryClusterer | None = None) -> None:
        self.engine = engine
        self.stories = stories

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        # Clusters first: an article a dead process left gets its story before anyone reads its matches.
        clustered = await self.stories.catch_up_all() if self.stories is not None else 0
        caught_up = await self.engine.matcher.catch_up_all()
        deliveries = self.engine.deliveries
        planned = await deliveries.plan(ctx.now)
        spikes = await deliveries.check_spikes(ctx.now)
        sent, failed = await deliveries.send_due(ctx.now)
        ctx.log.info(
            "monitor-deliveries: %d clustered, %d caught up, %d planned, %d sent, %d failed",
            clustered,
            caught_up,
            planned,
            sent,
            failed,
        )
        return {
            "stories_caught_up": clustered,
            "matches_caught_up": caught_up,
            "planned": planned,
            "spikes": spikes,
            "sent": sent,
            "failed": failed,
        }

    async def aclose(self) -> None:
        await self.engine.drain()
