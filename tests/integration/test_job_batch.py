"""Completing a claimed batch of crawl jobs in one statement, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mediabeat.db.engine import Database
from mediabeat.db.stores.jobs import JobStore, NewJob
from mediabeat.db.tables import organizations

NOW = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


async def test_complete_many_finishes_only_the_jobs_this_worker_still_holds(db: Database) -> None:
    async with db.write() as conn:
        org = await conn.execute(organizations.insert().values(name="o", created_at=NOW).returning(organizations.c.id))
        org_id = int(org.scalar_one())
    store = JobStore(db)
    await store.enqueue(
        [NewJob(org_id=org_id, feed_id=None, url=f"https://a.example/{i}", url_hash=f"h{i}") for i in range(6)],
        now=NOW,
    )
    mine = await store.claim(worker="a", now=NOW, limit=4, lease=timedelta(seconds=30))
    theirs = await store.claim(worker="b", now=NOW, limit=4, lease=timedelta(seconds=30))
    assert (len(mine), len(theirs)) == (4, 2)
    # a's lease on its first job ran out and b took it over meanwhile
    await store.release_expired(now=NOW + timedelta(seconds=31))
    retaken = await store.claim(worker="b", now=NOW + timedelta(seconds=31), limit=1, lease=timedelta(seconds=30))
    assert [j.id for j in retaken] == [mine[0].id]
    done = await store.complete_many([j.id for j in mine], worker="a", now=NOW + timedelta(seconds=32))
    assert done == 0  # every one of a's leases had run out and gone back to the queue
    assert await store.complete_many([], worker="a", now=NOW) == 0
    again = await store.claim(worker="a", now=NOW + timedelta(seconds=33), limit=10, lease=timedelta(seconds=30))
    assert await store.complete_many([j.id for j in again], worker="a", now=NOW + timedelta(seconds=34)) == len(again)
    counts = await store.counts_by_status()
    assert counts == {"succeeded": len(again), "running": 6 - len(again)}
