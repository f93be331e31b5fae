"""Completing a claimed batch of crawl jobs in one statement, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore, NewArticle
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


async def test_a_batch_of_stored_pages_completes_held_jobs_with_their_articles(db: Database) -> None:
    async with db.write() as conn:
        org = await conn.execute(organizations.insert().values(name="o", created_at=NOW).returning(organizations.c.id))
        org_id = int(org.scalar_one())
    jobs, articles = JobStore(db), ArticleStore(db)
    urls = [f"https://a.example/{i}" for i in range(4)]
    await jobs.enqueue(
        [NewJob(org_id=org_id, feed_id=None, url=u, url_hash=f"h{i}") for i, u in enumerate(urls)], now=NOW
    )
    mine = await jobs.claim(worker="a", now=NOW, limit=4, lease=timedelta(seconds=30))
    batch = [
        NewArticle(org_id, None, j.url, j.url_hash, j.url, f"T{j.id}", None, None, None, "body", "en") for j in mine
    ]
    article_ids = await articles.save_many(batch, now=NOW)
    assert len(set(article_ids)) == 4
    # storing the same pages again (a worker killed between the two writes, then a retry) refreshes them in place
    assert await articles.save_many(list(reversed(batch)), now=NOW) == list(reversed(article_ids))
    assert await articles.count(org_id=org_id) == 4
    # b took over a's first job after a's lease ran out: a's batch completes only the other three
    await jobs.release_expired(now=NOW + timedelta(seconds=31))
    await jobs.claim(worker="a", now=NOW + timedelta(seconds=31), limit=3, lease=timedelta(seconds=30))
    await jobs.claim(worker="b", now=NOW + timedelta(seconds=31), limit=1, lease=timedelta(seconds=30))
    held_by_b = next(j for j in await jobs.list_jobs(status="running") if j.locked_by == "b")
    done = await jobs.complete_with_articles(
        list(zip([j.id for j in mine], article_ids, strict=True)), worker="a", now=NOW + timedelta(seconds=32)
    )
    assert done == {j.id for j in mine} - {held_by_b.id}
    assert await jobs.complete_with_articles([], worker="a", now=NOW) == set()
    by_id = {j.id: j for j in await jobs.list_jobs()}
    for job, article_id in zip(mine, article_ids, strict=True):
        if job.id == held_by_b.id:
            assert by_id[job.id].status == "running" and by_id[job.id].article_id is None
        else:
            assert by_id[job.id].status == "succeeded" and by_id[job.id].article_id == article_id
            assert by_id[job.id].locked_by is None and by_id[job.id].finished_at is not None
