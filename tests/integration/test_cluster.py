"""Cluster coordination on both backends: node registry, the maintenance lease, and LISTEN/NOTIFY wake-ups."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from mediabeat.clock import FakeClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.jobs import JobStore, NewJob
from mediabeat.db.stores.nodes import LeaseStore, NodeStore
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.db.stores.stats import StatsStore
from mediabeat.db.tables import organizations
from mediabeat.scheduler.cluster import MAINTENANCE_LEASE, ClusterCoordinator
from mediabeat.scheduler.pg_notify import PostgresNotifier
from mediabeat.testing import BlockingHandler, build_test_scheduler

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def coordinator(
    db: Database, clock: FakeClock, node_id: str, handlers: dict[str, BlockingHandler] | None = None
) -> ClusterCoordinator:
    service, _ = build_test_scheduler(db, clock=clock, handlers=handlers or {}, node_id=node_id)
    return ClusterCoordinator(
        nodes=NodeStore(db),
        leases=LeaseStore(db),
        jobs=JobStore(db),
        counts=StatsStore(db),
        service=service,
        clock=clock,
        role="worker",
        heartbeat_seconds=5,
        dead_after=timedelta(seconds=20),
    )


async def test_nodes_register_heartbeat_stop_and_go_dead(db: Database) -> None:
    clock = FakeClock(T0)
    first, second = coordinator(db, clock, "a:1"), coordinator(db, clock, "b:2")
    await first.step()
    await second.step()
    clock.advance(10)
    await first.step()
    states = {n.id: (n.state, n.role) for n in await first.list_nodes()}
    assert states == {"a:1": ("running", "worker"), "b:2": ("running", "worker")}
    clock.advance(15)  # b:2 has not beaten for 25 s
    await first.step()
    assert {n.id: n.state for n in await first.list_nodes()} == {"a:1": "running", "b:2": "dead"}
    await first.stop()
    assert {n.id: n.state for n in await second.list_nodes()} == {"a:1": "stopped", "b:2": "dead"}
    clock.advance(days=2)
    await second.step()  # the leader prunes nodes silent for more than a day, and re-registers itself
    assert [n.id for n in await second.list_nodes()] == ["b:2"]


async def test_one_lease_holder_at_a_time_and_a_dead_holder_loses_it(db: Database) -> None:
    clock = FakeClock(T0)
    leases = LeaseStore(db)
    assert await leases.acquire("maint", holder="a", now=clock.now(), ttl=timedelta(seconds=15))
    assert not await leases.acquire("maint", holder="b", now=clock.now(), ttl=timedelta(seconds=15))
    clock.advance(10)
    assert await leases.acquire("maint", holder="a", now=clock.now(), ttl=timedelta(seconds=15))  # renewed
    clock.advance(10)
    assert not await leases.acquire("maint", holder="b", now=clock.now(), ttl=timedelta(seconds=15))
    assert await leases.holder("maint", now=clock.now()) == "a"
    clock.advance(10)  # a stopped renewing 20 s ago: the lease has run out
    assert await leases.holder("maint", now=clock.now()) is None
    assert await leases.acquire("maint", holder="b", now=clock.now(), ttl=timedelta(seconds=15))
    assert not await leases.acquire("maint", holder="a", now=clock.now(), ttl=timedelta(seconds=15))
    assert await leases.release("maint", holder="b")
    assert await leases.acquire("maint", holder="a", now=clock.now(), ttl=timedelta(seconds=15))


async def test_racing_nodes_agree_on_one_lease_holder(db: Database) -> None:
    clock = FakeClock(T0)
    leases = LeaseStore(db)
    won = await asyncio.gather(
        *(leases.acquire("race", holder=f"n{i}", now=clock.now(), ttl=timedelta(seconds=15)) for i in range(6))
    )
    assert sum(won) == 1


async def test_only_the_leader_reaps_and_releases_expired_job_leases(db: Database) -> None:
    clock = FakeClock(T0)
    org_id = await _an_org(db)
    blocking = BlockingHandler()
    dying = coordinator(db, clock, "dying:1", {"nightly_cleanup": blocking})
    survivor = coordinator(db, clock, "survivor:2", {"nightly_cleanup": blocking})
    assert (await dying.step()).leader
    assert not (await survivor.step()).leader
    run_id = await dying.service.run_now("nightly-cleanup")
    await asyncio.wait_for(blocking.started.wait(), 5)
    jobs = JobStore(db)
    await jobs.enqueue([NewJob(org_id=org_id, feed_id=None, url="https://a.example/1", url_hash="h1")], now=clock.now())
    claimed = await jobs.claim(worker="dying:1", now=clock.now(), limit=10, lease=timedelta(seconds=30))
    assert len(claimed) == 1
    # dying:1 is killed: it neither heartbeats its run nor renews its lease any more.
    clock.advance(16)
    result = await survivor.step()
    assert result.leader and result.reaped_runs == 0 and result.released_jobs == 0
    clock.advance(16)
    result = await survivor.step()
    assert (result.reaped_runs, result.released_jobs) == (1, 1)
    run = await SchedulerStore(db).get_run(run_id)
    assert run is not None and run.status == "abandoned"
    assert await survivor.leader() == "survivor:2"
    assert (await jobs.list_jobs())[0].status == "queued"
    blocking.release()
    await dying.service.wait_idle(5)
    # The leader also folds the run-count deltas (PostgreSQL's triggers append them).
    result = await survivor.step()
    assert (result.folded_counts > 0) == db.is_postgres
    stats = await StatsStore(db).scheduler_stats(clock.now())
    assert stats.succeeded_runs == 1 and stats.running_runs == 0


async def _an_org(db: Database) -> int:
    async with db.write() as conn:
        return int(
            (
                await conn.execute(
                    organizations.insert().values(name="Org one", created_at=T0).returning(organizations.c.id)
                )
            ).scalar_one()
        )


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_notify_on_one_node_wakes_another(database_url: str) -> None:
    sender, receiver = PostgresNotifier(database_url), PostgresNotifier(database_url)
    try:
        await receiver.start()
        waiting = asyncio.create_task(receiver.wait(30))
        await asyncio.sleep(0.1)
        await sender.notify()
        assert await asyncio.wait_for(waiting, 5) is True
        assert await receiver.wait(0.2) is False  # woken once per notification, then asleep again
    finally:
        await sender.close()
        await receiver.close()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_nodes_list_cli(database_url: str, db: Database) -> None:
    clock = FakeClock(datetime.now(UTC))
    await coordinator(db, clock, "box:7").step()
    env = dict(os.environ, MEDIABEAT_DATABASE_URL=database_url)
    done = subprocess.run(
        [sys.executable, "-m", "mediabeat", "nodes", "list", "--json"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    nodes = json.loads(done.stdout)
    assert [(n["id"], n["state"], n["leader"]) for n in nodes] == [("box:7", "running", True)]
    table = subprocess.run(
        [sys.executable, "-m", "mediabeat", "nodes", "list"], env=env, capture_output=True, text=True
    )
    assert "box:7" in table.stdout and MAINTENANCE_LEASE not in table.stderr
