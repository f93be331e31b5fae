"""Following due feeds within a run: fetch each feed within about a second of its due time, not at the next minute.

hourly-rss-fetch wakes every minute. Without following, a feed that comes due at :07 past the
minute waits 53 s for the next occurrence. With it, the run's first pass fetches what is due;
then, until `follow_seconds` after the occurrence it started for, the run sleeps until the next
feed's due time and fetches again. With the every-minute cron and the default 50 s, one run
covers its minute and ends before the next occurrence.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from mediabeat.clock import Clock
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.domain.scheduler import AllWorkFailed, Trigger
from mediabeat.tasks.base import NothingToDo, RunContext, TaskHandler

# Two passes are at least this far apart, so a feed that stays due (say, its outcome could not be
# written) is retried once a second, not in a busy loop.
MIN_PASS_GAP_S = 1.0
# Counts that are not summed over the passes: the organisations of one pass overlap the next's.
LARGEST = frozenset({"orgs"})


def next_pass_wait(*, now: datetime, next_due: datetime | None, window_end: datetime) -> float | None:
    """Seconds to wait before the next pass, or None when the run should end (pure: the time is passed in).

    `next_due` is the earliest due time of an active feed (None: there is none). A feed due
    after `window_end` is left to a later occurrence.
    """
    if next_due is None or next_due > window_end or now >= window_end:
        return None
    return max(MIN_PASS_GAP_S, (next_due - now).total_seconds())


def combine(results: list[Mapping[str, Any]]) -> dict[str, Any]:
    """One run's result from its passes: counts summed (errors by kind too), `passes` added."""
    out: dict[str, Any] = {}
    for result in results:
        for key, value in result.items():
            if isinstance(value, int) and not isinstance(value, bool):
                out[key] = max(out.get(key, 0), value) if key in LARGEST else out.get(key, 0) + value
            elif isinstance(value, dict):
                out[key] = dict(Counter(out.get(key, {})) + Counter(value))
            else:
                out.setdefault(key, value)
    out["passes"] = len(results)
    return out


class FeedFollower:
    """Wraps the feed-fetch handler: after its first pass, it fetches feeds as they come due until the window ends."""

    def __init__(
        self,
        inner: TaskHandler,
        *,
        feeds: FeedStore,
        clock: Clock,
        follow_seconds: int,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
    ) -> None:
        self.inner = inner
        self.feeds = feeds
        self.clock = clock
        self.follow_seconds = follow_seconds
        self.sleep = sleep  # tests: moves a fake clock by the seconds waited

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        results = [await self._pass(ctx)]
        # Only scheduled runs follow: a manual run (or {"all": true}) is one pass someone waits for.
        if self.follow_seconds > 0 and ctx.trigger == Trigger.SCHEDULE and not ctx.params.get("all"):
            await self._follow(ctx, results)
        if len(results) > 1:
            ctx.log.info("hourly-rss-fetch followed due feeds: %d passes", len(results))
        return self._outcome(results)

    async def _follow(self, ctx: RunContext, results: list[Mapping[str, Any]]) -> None:
        """More passes, each when the next feed comes due, until the window ends or the node winds down."""
        window_end = ctx.scheduled_for + timedelta(seconds=self.follow_seconds)
        for _ in range(int(self.follow_seconds / MIN_PASS_GAP_S)):
            before = self.clock.now()
            wait = next_pass_wait(now=before, next_due=await self.feeds.next_due_at(now=before), window_end=window_end)
            if wait is None or ctx.winding_down.is_set():
                return
            with contextlib.suppress(TimeoutError):  # the wait ends early when the node winds down
                await asyncio.wait_for(ctx.winding_down.wait(), timeout=self.clock.real_seconds(wait))
            if self.sleep is not None:
                await self.sleep(wait)
            now = self.clock.now()
            if now <= before or ctx.winding_down.is_set():  # a clock that does not move (tests) cannot follow
                return
            results.append(await self._pass(replace(ctx, now=now, scheduled_for=now)))

    async def _pass(self, ctx: RunContext) -> Mapping[str, Any]:
        try:
            return await self.inner(ctx)
        except AllWorkFailed as failed:  # judged over the whole run below, not pass by pass
            return {**failed.result, "_first_error": str(failed)}
        except NothingToDo as nothing:  # a pass with no feed due; the run is empty only if every pass was
            return {"feeds": 0, "_nothing": str(nothing)}

    @staticmethod
    def _outcome(results: list[Mapping[str, Any]]) -> Mapping[str, Any]:
        errors = [r["_first_error"] for r in results if "_first_error" in r]
        if all("_nothing" in r for r in results):
            raise NothingToDo(results[0]["_nothing"])
        combined = combine([r for r in results if "_nothing" not in r])
        combined["passes"] = len(results)
        combined.pop("_first_error", None)
        if len(results) == 1 and not errors:
            combined.pop("passes")
            return combined
        attempted, failed = combined.get("feeds", 0), combined.get("failed", 0)
        if errors and attempted and failed >= attempted:
            raise AllWorkFailed(
                errors[0] if len(results) == 1 else f"{errors[0]} (over {len(results)} passes)", combined
            )
        return combined
