"""Per-host politeness shared through the database (SQLite and PostgreSQL): two connections, as two processes."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mediabeat.clock import SystemClock
from mediabeat.crawler.http import HostLimiter, SharedLayer
from mediabeat.crawler.http.limiter import SHARED_REUSE_S
from mediabeat.db.engine import Database
from mediabeat.db.stores.politeness import PolitenessStore, PolitenessUnavailable
from mediabeat.db.tables import host_politeness, host_slots
from tests.crawler_helpers import handlers

HOST = "news.example:443"
LEASE = 60.0


@pytest.fixture
async def other(database_url: str) -> AsyncIterator[Database]:
    """A second engine on the same database: what another worker process would hold."""
    database = Database(database_url)
    yield database
    await database.dispose()


async def reserved_starts(db: Database) -> list[float]:
    """The start of every slot held on HOST (its lease ends LEASE seconds after it), in order."""
    async with db.read() as conn:
        rows = await conn.execute(sa.select(host_slots.c.expires_at).where(host_slots.c.host == HOST))
        return sorted(float(expires) - LEASE for (expires,) in rows)


async def test_two_connections_reserving_at_once_get_starts_a_spacing_apart(db: Database, other: Database) -> None:
    stores = [PolitenessStore(db), PolitenessStore(other)]
    answers = await asyncio.gather(
        *(
            stores[n % 2].acquire(HOST, holder=f"p{n}", limit=8, spacing=0.3, crawl_delay=None, lease=LEASE)
            for n in range(3)
        )
    )
    assert all(granted for granted, _, _ in answers)
    starts = await reserved_starts(db)
    assert len(starts) == 3
    assert all(later - earlier >= 0.3 - 1e-6 for earlier, later in itertools.pairwise(starts))
    waits = sorted(wait for _, wait, _ in answers)
    assert waits[0] == pytest.approx(0.0, abs=0.25) and waits[-1] > 0.3


async def test_no_more_slots_than_the_limit_across_connections_and_a_released_one_is_free_again(
    db: Database, other: Database
) -> None:
    first, second = PolitenessStore(db), PolitenessStore(other)
    assert (await first.acquire(HOST, holder="a", limit=2, spacing=0.0, crawl_delay=None, lease=LEASE))[0]
    assert (await second.acquire(HOST, holder="b", limit=2, spacing=0.0, crawl_delay=None, lease=LEASE))[0]
    assert await second.acquire(HOST, holder="c", limit=2, spacing=0.0, crawl_delay=None, lease=LEASE) == (
        False,
        0.0,
        0.0,
    )
    await first.release(HOST, holder="a")
    assert (await second.acquire(HOST, holder="c", limit=2, spacing=0.0, crawl_delay=None, lease=LEASE))[0]


async def test_an_expired_slot_lease_of_a_dead_process_is_reclaimed(db: Database) -> None:
    store = PolitenessStore(db)
    async with db.write() as conn:  # a process that died holding the only slot, its lease long over
        await conn.execute(host_slots.insert().values(host=HOST, holder="dead/1", expires_at=1.0))
    granted, _, _ = await store.acquire(HOST, holder="alive/1", limit=1, spacing=0.0, crawl_delay=None, lease=LEASE)
    assert granted  # the dead lease no longer counts; the next release clears it away
    await store.release(HOST, holder="alive/1")
    async with db.read() as conn:
        holders = (await conn.execute(sa.select(host_slots.c.holder))).scalars().all()
    assert holders == []


async def test_a_cool_down_and_a_crawl_delay_hold_for_every_connection(db: Database, other: Database) -> None:
    await PolitenessStore(db).cool_down(HOST, 30)
    granted, ask_again, _ = await PolitenessStore(other).acquire(
        HOST, holder="b", limit=4, spacing=0.0, crawl_delay=None, lease=LEASE
    )
    assert not granted and 25 < ask_again <= 30
    await PolitenessStore(db).cool_down("slow.example:443", 0.5)
    granted, wait, _ = await PolitenessStore(other).acquire(
        "slow.example:443", holder="b", limit=4, spacing=0.0, crawl_delay=None, lease=LEASE
    )
    assert granted and 0.2 < wait <= 0.5

    # One process read Crawl-delay: 5 in robots.txt; another, which has not, keeps to it too.
    assert (await PolitenessStore(db).acquire("c.example:80", holder="a", limit=4, spacing=0, crawl_delay=5, lease=1))[
        0
    ]
    granted, wait, spacing = await PolitenessStore(other).acquire(
        "c.example:80", holder="b", limit=4, spacing=0.0, crawl_delay=None, lease=LEASE
    )
    assert granted and 4 < wait <= 5 and spacing == 5  # the shared Crawl-delay is in force for it too
    async with db.read() as conn:
        row = (await conn.execute(sa.select(host_politeness).where(host_politeness.c.host == "c.example:80"))).one()
    assert row.crawl_delay_s == 5 and row.crawl_delay_until - row.updated_at == pytest.approx(3600, abs=5)


async def test_two_limiters_on_one_database_space_their_starts_together(db: Database, other: Database) -> None:
    """Two processes' limiters (one engine each), three requests each to one host, 0.5 s apart at least."""
    delay = 0.5
    limiters = [
        HostLimiter(concurrency=2, delay=delay, shared=SharedLayer(PolitenessStore(engine), holder=name, lease=LEASE))
        for name, engine in (("one", db), ("two", other))
    ]
    loop = asyncio.get_running_loop()
    starts: list[float] = []
    in_flight = 0
    most_in_flight = 0

    async def request(limiter: HostLimiter) -> None:
        nonlocal in_flight, most_in_flight
        async with limiter.slot(HOST):
            starts.append(loop.time())
            in_flight += 1
            most_in_flight = max(most_in_flight, in_flight)
            await asyncio.sleep(1.2)  # the "response": longer than two spacings, so slots overlap
            in_flight -= 1

    await asyncio.gather(*(request(limiters[n % 2]) for n in range(6)))
    starts.sort()
    # 20% of the delay for a task that wakes up late after its sleep: both "processes" share one
    # event loop here, which on a loaded machine (load 13 on 2 cores) woke one up to 60 ms late.
    assert all(later - earlier >= delay * 0.8 for earlier, later in itertools.pairwise(starts)), starts
    assert most_in_flight <= 2
    assert await reserved_starts(db) == []  # every slot given back


class CountingStore:
    """A PolitenessStore that counts its calls: each is a round trip to the database."""

    def __init__(self, db: Database) -> None:
        self.store = PolitenessStore(db)
        self.acquired = 0
        self.released = 0

    async def acquire(self, host: str, **kwargs: Any) -> tuple[bool, float, float]:
        self.acquired += 1
        return await self.store.acquire(host, **kwargs)

    async def release(self, host: str, *, holder: str) -> None:
        self.released += 1
        await self.store.release(host, holder=holder)

    async def cool_down(self, host: str, seconds: float) -> None:
        await self.store.cool_down(host, seconds)


async def test_without_spacing_a_process_reuses_its_shared_slots_and_the_host_s_concurrency_holds(
    db: Database, other: Database
) -> None:
    """Two processes, 30 short requests each to one host, at most 2 at once: far fewer round trips than requests."""
    stores = [CountingStore(db), CountingStore(other)]
    limiters = [
        HostLimiter(concurrency=2, delay=0.0, shared=SharedLayer(store, holder=f"p{n}", lease=LEASE))
        for n, store in enumerate(stores)
    ]
    in_flight = most_in_flight = 0

    async def request(limiter: HostLimiter) -> None:
        nonlocal in_flight, most_in_flight
        async with limiter.slot(HOST):
            in_flight += 1
            most_in_flight = max(most_in_flight, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1

    await asyncio.gather(*(request(limiters[n % 2]) for n in range(60)))
    assert most_in_flight <= 2
    acquired = sum(store.acquired for store in stores)
    assert acquired < 30, acquired  # a slot serves several requests of its process
    await asyncio.sleep(SHARED_REUSE_S + 0.5)  # kept at most that long after its grant, then given back
    assert await reserved_starts(db) == []
    assert sum(store.released for store in stores) >= 1


async def test_a_crawl_delay_shared_by_another_process_keeps_a_slot_from_being_reused(
    db: Database, other: Database
) -> None:
    delay = 0.4
    await PolitenessStore(db).acquire(HOST, holder="a", limit=4, spacing=0.0, crawl_delay=delay, lease=0.01)
    limiter = HostLimiter(concurrency=4, delay=0.0, shared=SharedLayer(PolitenessStore(other), holder="b", lease=LEASE))
    loop = asyncio.get_running_loop()
    starts = []
    for _ in range(3):
        async with limiter.slot(HOST):
            starts.append(loop.time())
    # Half the delay: a reused slot would start the next request at once (milliseconds); the rest
    # is room for a task woken late on a loaded machine.
    assert all(later - earlier >= delay * 0.5 for earlier, later in itertools.pairwise(starts)), starts


async def test_without_its_tables_the_shared_layer_gives_way_to_the_process_limits_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bare = Database(f"sqlite:///{tmp_path / 'not-migrated.db'}")
    try:
        with pytest.raises(PolitenessUnavailable, match="no such table"):
            await PolitenessStore(bare).acquire(HOST, holder="a", limit=1, spacing=0, crawl_delay=None, lease=1)
        limiter = HostLimiter(concurrency=1, delay=0.0, shared=SharedLayer(PolitenessStore(bare), holder="a", lease=1))
        with caplog.at_level(logging.WARNING, logger="mediabeat.crawler.http.limiter"):
            for _ in range(3):
                async with limiter.slot(HOST):
                    pass
            await limiter.cool_down(HOST, 0.0)
    finally:
        await bare.dispose()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "keeps to its own per-host limits" in warnings[0].getMessage()


@pytest.mark.parametrize("setting", [None, True, False])
async def test_the_crawler_shares_politeness_by_default_on_postgresql_only(db: Database, setting: bool | None) -> None:
    _, crawl = handlers(db, SystemClock(), crawler_shared_politeness=setting)
    client = crawl.client_factory()
    try:
        expected = db.is_postgres if setting is None else setting
        assert (client.limiter.shared is not None) is expected
    finally:
        await client.aclose()
