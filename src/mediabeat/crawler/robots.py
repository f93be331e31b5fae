"""robots.txt with protego: fetched through the safe client, cached per host for every run of the process."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

from mediabeat.crawler.http import FetchError, FetchErrorKind, SafeClient

ROBOTS_MAX_BYTES = 512 * 1024
# A robots.txt that could not be read is asked for again sooner than one that was.
UNAVAILABLE_TTL_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class RobotsVerdict:
    allowed: bool
    reason: str | None = None
    retry: bool = False  # "not now" (robots.txt unavailable) rather than "never"
    crawl_delay: float | None = None  # seconds between requests, when robots.txt asks for it


@dataclass
class _Entry:
    parser: Protego | None  # None: allow everything (no robots.txt)
    unavailable: str | None  # set: disallow for now (5xx, network)
    fetched: float
    crawl_delay: float | None = None


class RobotsCache:
    """Per-host robots.txt rules. 4xx means no rules; 5xx or no answer means "disallow for now".

    One cache serves every run of a handler, so robots.txt is fetched once an hour per host
    (again after UNAVAILABLE_TTL_SECONDS when it could not be read), not once per run.
    """

    def __init__(self, *, user_agent: str, ttl_seconds: float = 3600.0) -> None:
        self.user_agent = user_agent
        self.ttl = ttl_seconds
        self._entries: dict[str, _Entry] = {}
        self._pending: dict[str, asyncio.Future[_Entry]] = {}

    async def check(self, url: str, client: SafeClient) -> RobotsVerdict:
        """May `url` be crawled? FetchError (COOLING_DOWN) when its host is cooling down: ask again after that."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        entry = await self._entry(origin, client)
        if entry.unavailable is not None:
            return RobotsVerdict(False, entry.unavailable, retry=True)
        if entry.parser is None or entry.parser.can_fetch(url, self.user_agent):
            return RobotsVerdict(True, crawl_delay=entry.crawl_delay)
        return RobotsVerdict(False, "disallowed by robots.txt")

    async def _entry(self, origin: str, client: SafeClient) -> _Entry:
        entry = self._entries.get(origin)
        if entry is not None:
            ttl = self.ttl if entry.unavailable is None else min(self.ttl, UNAVAILABLE_TTL_SECONDS)
            if time.monotonic() - entry.fetched < ttl:
                return entry
        pending = self._pending.get(origin)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_Entry] = asyncio.get_running_loop().create_future()
        self._pending[origin] = future
        try:
            entry = await self._fetch(origin, client)
            self._entries[origin] = entry
            future.set_result(entry)
            return entry
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters see it, nobody logs "never retrieved"
            raise
        finally:
            del self._pending[origin]

    async def _fetch(self, origin: str, client: SafeClient) -> _Entry:
        now = time.monotonic()
        try:
            response = await client.get(f"{origin}/robots.txt", headers={"Accept": "text/plain, */*"})
        except FetchError as exc:
            if exc.kind is FetchErrorKind.COOLING_DOWN:
                raise  # not an answer about robots.txt: the caller waits out the host's cool-down, nothing is cached
            if exc.kind is FetchErrorKind.TOO_LARGE:
                return _Entry(None, None, now)
            return _Entry(None, f"robots.txt unavailable ({exc.kind}): not crawling for now", now)
        if response.status >= 500 or response.status == 429:
            return _Entry(None, f"robots.txt answered HTTP {response.status}: not crawling for now", now)
        if response.status >= 400:
            return _Entry(None, None, now)
        text = response.body[:ROBOTS_MAX_BYTES].decode("utf-8", errors="replace")
        try:
            parser = Protego.parse(text)
            delay = parser.crawl_delay(self.user_agent)
        except Exception:  # an unreadable robots.txt sets no rules
            return _Entry(None, None, now)
        return _Entry(parser, None, now, crawl_delay=float(delay) if delay else None)
