"""Per-host politeness: how many requests run at once, how far apart they start, and cool-downs.

Two layers. The in-process HostLimiter is the fast first gate: it keeps one process's requests
to a host within the limits without any I/O. Behind it, when one is given, a SharedPoliteness
(the database, through db/stores/politeness.py) keeps every process on the same database within
the same limits together: a request takes one of the host's cluster-wide slots and reserves its
start time there before it is sent. When the shared layer cannot be reached, the process goes on
with its own limits alone and says so once in its log.

When no spacing is in force for a host (no per-host delay, no Crawl-delay, its own or shared), a
shared slot whose request ended stays with the process, and its next request to the same host
takes it over instead of asking the database, for up to SHARED_REUSE_S after the slot was
granted; then it goes back. The process holds the slot all along (so the host's concurrency
across the cluster still counts it) and spends it locally: a busy host costs two round trips
per slot and second, not two per request. A
cool-down another process sets therefore reaches requests on a reused slot up to SHARED_REUSE_S
late; this process's own cool-downs apply at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

# A robots.txt Crawl-delay is honoured up to this: a longer one would hold a whole run on one host.
MAX_CRAWL_DELAY_S = 10.0
# While every shared slot of a host is taken, ask again after this long, doubling up to the maximum.
SHARED_POLL_MIN_S = 0.05
SHARED_POLL_MAX_S = 0.8
# One shared-layer call may take this long; a database slower than that counts as unreachable.
SHARED_CALL_TIMEOUT_S = 5.0
# A Retry-After longer than a fetch waits becomes a cool-down of the host, of at most this long: a
# server asking for a day away (or a date far ahead) is asked again within the hour.
MAX_COOL_DOWN_S = 3600.0
# After the shared layer failed, the process keeps to its own limits for this long before trying it again.
SHARED_RETRY_AFTER_S = 30.0
# A shared slot is handed from one of this process's requests to the next (no spacing in force) for
# at most this long after it was granted; then it goes back to the database. Shorter than the
# margin a slot lease has over the longest fetch (tasks.wiring), so no reused slot outlives its lease.
SHARED_REUSE_S = 1.0


class SharedPoliteness(Protocol):
    """Per-host limits kept where every crawling process sees them (the database).

    Times are the store's own: it answers in seconds from now, so the caller's clock never
    meets another machine's. A call that cannot use the shared state raises ConnectionError (the
    crawler knows nothing of databases).
    """

    async def acquire(
        self, host: str, *, holder: str, limit: int, spacing: float, crawl_delay: float | None, lease: float
    ) -> tuple[bool, float, float]:
        """Take one of the host's `limit` slots, for `lease` seconds after the start, and reserve a start.

        Returns (True, seconds to wait until the start, the spacing in force) or (False, seconds after
        which to ask again, the spacing in force). The spacing in force is the longer of `spacing` and
        the host's shared Crawl-delay (0 when neither). The start is at least that spacing after the
        previous one reserved by anyone, and not within a cool-down. `crawl_delay`, when not None,
        is the host's robots.txt Crawl-delay as this process read it, shared with the others.
        """
        ...

    async def release(self, host: str, *, holder: str) -> None:
        """Give the slot back (a lease that is never given back runs out by itself)."""
        ...

    async def cool_down(self, host: str, seconds: float) -> None:
        """No request to the host starts, in any process, for `seconds` from now."""
        ...


class HostCoolingDown(Exception):
    """The host is in a cool-down longer than a request may wait for: no request was sent."""

    def __init__(self, host: str, seconds: float) -> None:
        super().__init__(f"{host} asked us to stay away: no request for another {seconds:.0f} s")
        self.host = host
        self.seconds = seconds


@dataclass(frozen=True, slots=True)
class SharedSlot:
    """A shared slot this process holds: `since` (loop time) is when it was granted, `reusable` when no spacing was
    in force for the host then, so another of this process's requests may take it over."""

    holder: str
    since: float
    reusable: bool


@dataclass(frozen=True, slots=True)
class SharedLayer:
    """The shared store and how this process uses it: `holder` names the process in its slot leases."""

    store: SharedPoliteness
    holder: str
    lease: float


class HostLimiter:
    """At most `concurrency` requests per host at once, starts at least `delay` apart (or the host's
    own Crawl-delay, when longer), and cool-downs.

    One limiter serves every run of a process, so two tasks crawling one host share its limits.
    With `shared`, the same limits hold across every process on the same database as well.
    """

    def __init__(
        self,
        *,
        concurrency: int,
        delay: float,
        shared: SharedLayer | None = None,
        max_wait: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.concurrency = concurrency
        self.delay = delay
        self.shared = shared
        # A request that would wait longer than `max_wait` for a cool-down is refused (HostCoolingDown);
        # the long cool-downs are kept on `clock` (seconds), which a test can move.
        self.max_wait = max_wait
        self.clock = clock
        self._held_off_until: dict[str, float] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._next_start: dict[str, float] = {}
        self._delays: dict[str, float] = {}
        # One task per host asks the shared store at a time; the others wait their turn here.
        self._shared_turns: dict[str, asyncio.Lock] = {}
        self._shared_down_until: float | None = None
        # Shared slots of ended requests, kept for this process's next requests to the host (SHARED_REUSE_S).
        self._spares: dict[str, list[SharedSlot]] = {}
        self._returning: set[asyncio.Task[None]] = set()

    def set_delay(self, host: str, seconds: float) -> None:
        """Start requests to `host` at least `seconds` apart (its robots.txt Crawl-delay), up to MAX_CRAWL_DELAY_S."""
        self._delays[host] = min(max(seconds, 0.0), MAX_CRAWL_DELAY_S)

    def spacing(self, host: str) -> float:
        """Seconds between two starts to `host`: the configured delay or its Crawl-delay, whichever is longer."""
        return max(self.delay, self._delays.get(host, 0.0))

    async def cool_down(self, host: str, seconds: float) -> None:
        """No new request to `host` starts for `seconds` (it asked us to slow down), here and, when shared, anywhere."""
        until = asyncio.get_running_loop().time() + seconds
        self._next_start[host] = max(self._next_start.get(host, 0.0), until)
        await self._share_cool_down(host, seconds)

    async def _share_cool_down(self, host: str, seconds: float) -> None:
        if self.shared is not None and self._shared_usable():
            try:
                async with asyncio.timeout(SHARED_CALL_TIMEOUT_S):
                    await self.shared.store.cool_down(host, seconds)
            except (ConnectionError, TimeoutError) as exc:
                self._shared_failed(exc)

    async def hold_off(self, host: str, seconds: float) -> float:
        """A long cool-down: no request to `host` for `seconds` (at most MAX_COOL_DOWN_S), here and, when shared,
        anywhere; meanwhile slot() refuses at once. Returns the cool-down's length."""
        seconds = min(max(seconds, 0.0), MAX_COOL_DOWN_S)
        until = self.clock() + seconds
        self._held_off_until[host] = max(self._held_off_until.get(host, 0.0), until)
        await self._share_cool_down(host, seconds)
        return seconds

    def held_off(self, host: str) -> float:
        """Seconds left of `host`'s long cool-down in this process (0 when none)."""
        until = self._held_off_until.get(host)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            del self._held_off_until[host]
            return 0.0
        return left

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Wait for a turn at `host`; HostCoolingDown at once if its cool-down lasts longer than max_wait."""
        semaphore = self._slots.setdefault(host, asyncio.Semaphore(self.concurrency))
        async with semaphore:
            left = self.held_off(host)  # read after the wait for a slot: the request ahead may have set it
            if left > 0:
                raise HostCoolingDown(host, left)
            await self._local_start(host)
            shared = await self._shared_start(host)
            try:
                yield
            finally:
                if shared is not None:
                    await self._shared_end(host, shared)

    async def _local_start(self, host: str) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            start = max(now, self._next_start.get(host, 0.0))
            if start <= now:
                break
            await asyncio.sleep(start - now)
        self._next_start[host] = now + self.spacing(host)

    async def _shared_start(self, host: str) -> SharedSlot | None:
        """Wait for a shared slot and start: a spare one of this process, or one from the store; None when going
        without the shared layer."""
        shared = self.shared
        if shared is None or not self._shared_usable():
            return None
        if (spare := self._spare(host)) is not None:
            return spare
        holder = f"{shared.holder}/{uuid.uuid4().hex[:12]}"
        poll = SHARED_POLL_MIN_S
        async with self._shared_turns.setdefault(host, asyncio.Lock()):
            if (spare := self._spare(host)) is not None:  # handed back while this request waited for its turn
                return spare
            while True:
                try:
                    async with asyncio.timeout(SHARED_CALL_TIMEOUT_S):
                        granted, wait, spacing = await shared.store.acquire(
                            host,
                            holder=holder,
                            limit=self.concurrency,
                            spacing=self.spacing(host),
                            crawl_delay=self._delays.get(host),
                            lease=shared.lease,
                        )
                except (ConnectionError, TimeoutError) as exc:
                    self._shared_failed(exc)
                    return None
                self._shared_recovered()
                if granted:
                    break
                if wait > max(self.max_wait, 2 * self.spacing(host)):  # a long cool-down set by another process
                    raise HostCoolingDown(host, wait)
                # A start too far ahead says when to ask again; all slots taken says nothing: back off.
                pause = wait if wait > 0 else poll * random.uniform(1.0, 1.5)
                poll = min(poll * 2, SHARED_POLL_MAX_S)
                await asyncio.sleep(pause)
        if wait > 0:
            await asyncio.sleep(wait)
        reusable = spacing <= 0 and self.spacing(host) <= 0
        return SharedSlot(holder, asyncio.get_running_loop().time(), reusable)

    def _fresh(self, slot: SharedSlot) -> bool:
        return asyncio.get_running_loop().time() - slot.since < SHARED_REUSE_S

    def _spare(self, host: str) -> SharedSlot | None:
        """A fresh spare slot of `host`, taken; stale ones stay for _return_spares."""
        spares = self._spares.get(host)
        while spares:
            slot = spares.pop()
            if self._fresh(slot) and self.spacing(host) <= 0:
                return slot
            self._return_later(host, [slot])
        return None

    async def _shared_end(self, host: str, slot: SharedSlot) -> None:
        """Keep the slot for this process's next request to `host` while it may be reused; else give it back."""
        if slot.reusable and self._fresh(slot):
            self._spares.setdefault(host, []).append(slot)
            left = SHARED_REUSE_S - (asyncio.get_running_loop().time() - slot.since)
            asyncio.get_running_loop().call_later(max(left, 0.0) + 0.01, self._return_spares, host)
            return
        await self._shared_release(host, slot.holder)

    def _return_spares(self, host: str) -> None:
        """Give back the spare slots of `host` that nobody took while they could be reused."""
        spares = self._spares.pop(host, [])
        stale = [slot for slot in spares if not self._fresh(slot)]
        if fresh := [slot for slot in spares if self._fresh(slot)]:
            self._spares[host] = fresh
        if stale:
            self._return_later(host, stale)

    def _return_later(self, host: str, slots: list[SharedSlot]) -> None:
        async def give_back() -> None:
            for slot in slots:
                await self._shared_release(host, slot.holder)

        task = asyncio.get_running_loop().create_task(give_back())
        self._returning.add(task)
        task.add_done_callback(self._returning.discard)

    async def _shared_release(self, host: str, holder: str) -> None:
        assert self.shared is not None
        try:
            async with asyncio.timeout(SHARED_CALL_TIMEOUT_S):
                await self.shared.store.release(host, holder=holder)
        except (ConnectionError, TimeoutError) as exc:
            self._shared_failed(exc)

    def _shared_usable(self) -> bool:
        down_until = self._shared_down_until
        return down_until is None or asyncio.get_running_loop().time() >= down_until

    def _shared_failed(self, exc: BaseException) -> None:
        if self._shared_down_until is None:
            reason = str(exc) or "no answer within the timeout"
            log.warning(
                "per-host politeness shared through the database is unavailable (%s); this process keeps "
                "to its own per-host limits and tries the database again every %g s",
                reason,
                SHARED_RETRY_AFTER_S,
            )
        self._shared_down_until = asyncio.get_running_loop().time() + SHARED_RETRY_AFTER_S

    def _shared_recovered(self) -> None:
        if self._shared_down_until is not None:
            self._shared_down_until = None
            log.info("per-host politeness is shared through the database again")
