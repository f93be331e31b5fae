"""The crawl-job queue on a real database: no duplicates, leases, retries, lost workers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from mediabeat.db.engine import Database
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import CLAIM_SQLITE, JobStore, NewJob
from mediabeat.db.tables import articles, organizations

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
LEASE = timedelta(minutes=5)


async def make_org(db: Database, name: str = "newsroom") -> int:
    async with db.write() as conn:
        return int(
            (
                await conn.execute(
                    organizations.insert().values(name=name, created_at=NOW).returning(organizations.c.id)
                )
            ).scalar_one()
        )


def jobs_for(org_id: int, n: int, prefix: str = "a") -> list[NewJob]:
    return [
        NewJob(org_id=org_id, feed_id=None, url=f"http://127.0.0.1/{prefix}{i}", url_hash=f"{prefix}{i}")
        for i in range(n)
    ]


async def test_enqueue_skips_urls_already_queued_or_stored(db: Database) -> None:
    store = JobStore(db)
    org = await make_org(db)
    other = await make_org(db, "other")
    async with db.write() as conn:
        await conn.execute(
            articles.insert().values(
                org_id=org, url="http://127.0.0.1/a0", url_hash="a0", fetched_at=NOW, created_at=NOW
            )
        )
    assert await store.enqueue(jobs_for(org, 5) + jobs_for(org, 5), now=NOW) == 4  # a0 is an article already
    assert await store.enqueue(jobs_for(org, 6), now=NOW) == 1  # only a5 is new
    assert await store.enqueue(jobs_for(other, 3), now=NOW) == 3  # dedup is per organisation
    assert (await store.counts_by_status()) == {"queued": 8}


async def test_concurrent_claims_take_disjoint_batches(db: Database) -> None:
    store = JobStore(db)
    org = await make_org(db)
    await store.enqueue(jobs_for(org, 60), now=NOW)
    batches = await asyncio.gather(*(store.claim(worker=f"w{i}", now=NOW, limit=25, lease=LEASE) for i in range(3)))
    claimed = [job.id for batch in batches for job in batch]
    assert len(claimed) == 60 and len(set(claimed)) == 60
    assert all(job.status == "running" and job.attempts == 1 for batch in batches for job in batch)


async def test_retry_backs_off_then_fails_at_max_attempts(db: Database) -> None:
    store = JobStore(db)
    org = await make_org(db)
    await store.enqueue(jobs_for(org, 1), now=NOW, max_attempts=2)
    (job,) = await store.claim(worker="w", now=NOW, limit=10, lease=LEASE)
    assert (
        await store.retry_or_fail(job, worker="w", now=NOW, error="HTTP 503", backoff=timedelta(minutes=2)) == "retried"
    )
    assert await store.claim(worker="w", now=NOW + timedelta(minutes=1), limit=10, lease=LEASE) == []
    (again,) = await store.claim(worker="w", now=NOW + timedelta(minutes=2), limit=10, lease=LEASE)
    assert again.attempts == 2 and again.last_error == "HTTP 503"
    assert (
        await store.retry_or_fail(again, worker="w", now=NOW, error="HTTP 503", backoff=timedelta(minutes=4))
        == "failed"
    )
    (failed,) = await store.list_jobs(status="failed")
    assert failed.finished_at is not None
    assert await store.retry_failed(None, now=NOW) == 1
    assert (await store.counts_by_status()) == {"queued": 1}


async def test_expired_lease_returns_the_job_and_the_old_worker_cannot_finish_it(db: Database) -> None:
    store = JobStore(db)
    org = await make_org(db)
    await store.enqueue(jobs_for(org, 1), now=NOW)
    (job,) = await store.claim(worker="dead", now=NOW, limit=1, lease=LEASE)
    assert await store.release_expired(now=NOW + timedelta(minutes=4)) == 0
    assert await store.release_expired(now=NOW + timedelta(minutes=6)) == 1
    (retaken,) = await store.claim(worker="alive", now=NOW + timedelta(minutes=6), limit=1, lease=LEASE)
    assert retaken.id == job.id and retaken.attempts == 2
    assert not await store.complete(job.id, worker="dead", now=NOW, article_id=None)
    assert await store.complete(job.id, worker="alive", now=NOW, article_id=None)


async def test_claims_take_the_highest_priority_first_then_the_longest_due(db: Database) -> None:
    store = JobStore(db)
    org = await make_org(db)
    feeds = FeedStore(db)
    urgent, _ = await feeds.add(org, "http://127.0.0.1/urgent.xml", now=NOW)
    await feeds.change(urgent.id, priority=7, now=NOW)
    await store.enqueue(jobs_for(org, 3, "old"), now=NOW - timedelta(hours=1))
    await store.enqueue(
        [NewJob(org, urgent.id, f"http://127.0.0.1/u{i}", f"u{i}", priority=7) for i in range(2)], now=NOW
    )
    await store.enqueue(
        [NewJob(org, None, "http://127.0.0.1/later", "later", priority=9)], now=NOW + timedelta(hours=1)
    )
    await store.enqueue([NewJob(org, None, "http://127.0.0.1/mid", "mid", priority=3)], now=NOW)

    first = await store.claim(worker="w", now=NOW, limit=3, lease=LEASE)
    assert [(j.url_hash, j.priority) for j in first] == [("u0", 7), ("u1", 7), ("mid", 3)]
    rest = await store.claim(worker="w", now=NOW, limit=10, lease=LEASE)
    assert [j.url_hash for j in rest] == ["old0", "old1", "old2"]  # "later" (priority 9) is not due yet
    due = await store.claim(worker="w", now=NOW + timedelta(hours=1), limit=10, lease=LEASE)
    assert [(j.url_hash, j.priority) for j in due] == [("later", 9)]


async def test_a_feeds_new_priority_moves_its_queued_jobs_only(db: Database) -> None:
    store = JobStore(db)
    org = await make_org(db)
    feeds = FeedStore(db)
    feed, _ = await feeds.add(org, "http://127.0.0.1/feed.xml", now=NOW)
    await store.enqueue([NewJob(org, feed.id, f"http://127.0.0.1/f{i}", f"f{i}") for i in range(3)], now=NOW)
    await store.enqueue(jobs_for(org, 2, "other"), now=NOW - timedelta(hours=1))
    running = await store.claim(worker="w", now=NOW, limit=3, lease=LEASE)
    assert {j.url_hash for j in running} == {"other0", "other1", "f0"}

    changed = await feeds.change(feed.id, priority=5, now=NOW)
    assert changed is not None and changed.priority == 5 and changed.active
    by_hash = {j.url_hash: j for j in await store.list_jobs()}
    assert (by_hash["f0"].priority, by_hash["f1"].priority, by_hash["f2"].priority) == (0, 5, 5)
    assert by_hash["other0"].priority == 0
    with pytest.raises(ValueError, match="priority must be 0 to 9"):
        await feeds.change(feed.id, priority=10)
    assert await feeds.change(999_999, priority=1) is None


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_sqlite_claim_reads_the_queue_index_in_order_without_sorting(db: Database) -> None:
    sql = str(CLAIM_SQLITE.compile(dialect=db.engine.dialect))
    async with db.read() as conn:
        plan = [row[-1] for row in await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", (NOW, NOW, 100, "w", NOW))]
    assert any("USING INDEX ix_media_crawl_jobs_queued" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
