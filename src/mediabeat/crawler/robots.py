"""robots.txt with protego, fetched once per host through the safe client and cached."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

from mediabeat.crawler.http import FetchError, SafeClient

ROBOTS_MAX_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class RobotsVerdict:
    allowed: bool
    reason: str | None = None
    retry: bool = False  # "not now" (robots.txt unavailable) rather than "never"


@dataclass
class _Entry:
    parser: Protego | None  # None: allow everything (no robots.txt)
    unavailable: str | None  # set: disallow for now (5xx, network)
    fetched: float


class RobotsCache:
    """Per-host robots.txt rules. 4xx means no rules; 5xx or no answer means "disallow for now"."""

    def __init__(self, client: SafeClient, *, user_agent: str, ttl_seconds: float = 3600.0) -> None:
        self.client = client
        self.user_agent = user_agent
        self.ttl = ttl_seconds
        self._entries: dict[str, _Entry] = {}
        self._pending: dict[str, asyncio.Future[_Entry]] = {}

    async def check(self, url: str) -> RobotsVerdict:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        entry = await self._entry(origin)
        if entry.unavailable is not None:
            return RobotsVerdict(False, entry.unavailable, retry=True)
        if entry.parser is None or entry.parser.can_fetch(url, self.user_agent):
            return RobotsVerdict(True)
        return RobotsVerdict(False, "disallowed by robots.txt")

    async def _entry(self, origin: str) -> _Entry:
        entry = self._entries.get(origin)
        if entry is not None and time.monotonic() - entry.fetched < self.ttl:
            return entry
        pending = self._pending.get(origin)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_Entry] = asyncio.get_running_loop().create_future()
        self._pending[origin] = future
        try:
            entry = await self._fetch(origin)
            self._entries[origin] = entry
            future.set_result(entry)
            return entry
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters see it, nobody logs "never retrieved"
            raise
        finally:
            del self._pending[origin]

    async def _fetch(self, origin: str) -> _Entry:
        now = time.monotonic()
        try:
            response = await self.client.get(f"{origin}/robots.txt", headers={"Accept": "text/plain, */*"})
        except FetchError as exc:
            if exc.kind == "too_large":
                return _Entry(None, None, now)
            return _Entry(None, f"robots.txt unavailable ({exc.kind}): not crawling for now", now)
        if response.status >= 500 or response.status == 429:
            return _Entry(None, f"robots.txt answered HTTP {response.status}: not crawling for now", now)
        if response.status >= 400:
            return _Entry(None, None, now)
        text = response.body[:ROBOTS_MAX_BYTES].decode("utf-8", errors="replace")
        try:
            return _Entry(Protego.parse(text), None, now)
        except Exception:  # an unreadable robots.txt sets no rules
            return _Entry(None, None, now)
