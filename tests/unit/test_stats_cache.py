"""The /stats cache: fresh figures within max_age, one background refresh after it, invalidation."""

from __future__ import annotations

import asyncio
from typing import Any

from mediabeat.domain.scheduler import SchedulerStats
from mediabeat.web.api.scheduler import StatsCache


class CountingService:
    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def stats(self) -> SchedulerStats:
        self.calls += 1
        await self.gate.wait()
        return SchedulerStats(self.calls, 0, 0, 0, 0, 0, 0, [])


async def test_fresh_figures_are_reused_and_stale_ones_refresh_in_the_background() -> None:
    service = CountingService()
    cache = StatsCache(service, max_age=0.05)  # type: ignore[arg-type]
    first = await cache.get()
    assert first.total_tasks == 1 and (await cache.get()).total_tasks == 1 and service.calls == 1
    await asyncio.sleep(0.06)
    service.gate.clear()
    stale = await asyncio.wait_for(cache.get(), 1)  # answers at once with the old figures
    assert stale.total_tasks == 1
    again = await asyncio.wait_for(cache.get(), 1)  # still one refresh under way, not two
    assert again.total_tasks == 1
    service.gate.set()
    await asyncio.sleep(0.01)
    assert (await cache.get()).total_tasks == 2 and service.calls == 2


async def test_invalidate_makes_the_next_reader_wait_for_fresh_figures() -> None:
    service = CountingService()
    cache = StatsCache(service, max_age=60)  # type: ignore[arg-type]
    await cache.get()
    cache.invalidate()
    fresh: Any = await cache.get()
    assert fresh.total_tasks == 2
