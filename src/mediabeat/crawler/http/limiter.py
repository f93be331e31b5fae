"""Per-host politeness: how many requests run at once, how far apart they start, and cool-downs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

# A robots.txt Crawl-delay is honoured up to this: a longer one would hold a whole run on one host.
MAX_CRAWL_DELAY_S = 10.0


class HostLimiter:
    """At most `concurrency` requests per host at once, starts at least `delay` apart (or the host's
    own Crawl-delay, when longer), and cool-downs.

    One limiter serves every run of a process, so two tasks crawling one host share its limits.
    """

    def __init__(self, *, concurrency: int, delay: float) -> None:
        self.concurrency = concurrency
        self.delay = delay
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._next_start: dict[str, float] = {}
        self._delays: dict[str, float] = {}

    def set_delay(self, host: str, seconds: float) -> None:
        """Start requests to `host` at least `seconds` apart (its robots.txt Crawl-delay), up to MAX_CRAWL_DELAY_S."""
        self._delays[host] = min(max(seconds, 0.0), MAX_CRAWL_DELAY_S)

    def cool_down(self, host: str, seconds: float) -> None:
        """No new request to `host` starts for `seconds` (it asked us to slow down)."""
        until = asyncio.get_running_loop().time() + seconds
        self._next_start[host] = max(self._next_start.get(host, 0.0), until)

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        semaphore = self._slots.setdefault(host, asyncio.Semaphore(self.concurrency))
        async with semaphore:
            loop = asyncio.get_running_loop()
            while True:
                now = loop.time()
                start = max(now, self._next_start.get(host, 0.0))
                if start <= now:
                    break
                await asyncio.sleep(start - now)
            self._next_start[host] = now + max(self.delay, self._delays.get(host, 0.0))
            yield
