"""The crawl-job queue: enqueue without duplicates, claim as leases in one statement, finish."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mediabeat.db.engine import Database
from mediabeat.db.tables import articles as articles_t
from mediabeat.db.tables import media_crawl_jobs as jobs_t
from mediabeat.domain.content import JobRecord, JobStatus
from mediabeat.domain.text import clean_text

# The bulk insert of enqueue(), in the driver's own terms: a URL the org has stored as an article
# (the unique (org_id, url_hash) index answers) or queued before is skipped. PostgreSQL takes it
# through executemany (psycopg pipelines the rows).
ENQUEUE_SQL = (
    "INSERT INTO media_crawl_jobs"
    " (org_id, feed_id, url, url_hash, priority, feed_published_at,"
    " status, attempts, max_attempts, run_after, created_at, updated_at)"
    " SELECT %s, %s, %s, %s, %s, %s::timestamptz, 'queued', 0, %s, %s, %s, %s"
    " WHERE NOT EXISTS (SELECT 1 FROM articles WHERE articles.org_id = %s AND articles.url_hash = %s)"
    " ON CONFLICT (org_id, url_hash) DO NOTHING"
)
# SQLite takes a whole batch as one JSON parameter and one statement. executemany would hand the
# GIL back and forth once per row, and while the event loop is busy parsing feeds each hand-back
# waits for the interpreter's switch interval: a batch took seconds instead of a tenth of one.
ENQUEUE_SQLITE = (
    "INSERT INTO media_crawl_jobs"
    " (org_id, feed_id, url, url_hash, priority, feed_published_at,"
    " status, attempts, max_attempts, run_after, created_at, updated_at)"
    " SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), json_extract(j.value, '$[2]'),"
    " json_extract(j.value, '$[3]'), json_extract(j.value, '$[4]'), json_extract(j.value, '$[5]'),"
    " 'queued', 0, ?, ?, ?, ?"
    " FROM json_each(?) AS j"
    " WHERE NOT EXISTS (SELECT 1 FROM articles WHERE articles.org_id = json_extract(j.value, '$[0]')"
    " AND articles.url_hash = json_extract(j.value, '$[3]'))"
    " ON CONFLICT (org_id, url_hash) DO NOTHING"
)

ERROR_LIMIT = 2_000


def _claim(*, index_hint: str, lock: str) -> sa.TextualSelect:
    """The claim: lease the next `limit` due queued jobs in claim order, return them whole.

    'queued' is a literal so that the planner can prove the partial index
    ix_media_crawl_jobs_queued (priority DESC, run_after, id) WHERE status = 'queued' applies;
    the candidates are then read from it in order, and the scan stops after `limit`.
    """
    return (
        sa.text(
            "UPDATE media_crawl_jobs SET status = 'running', locked_by = :worker, locked_until = :until,"
            " attempts = attempts + 1, updated_at = :now"
            f" WHERE id IN (SELECT id FROM media_crawl_jobs{index_hint}"
            " WHERE status = 'queued' AND run_after <= :now"
            f" ORDER BY priority DESC, run_after, id LIMIT :limit{lock})"
            f" RETURNING {', '.join(column.name for column in jobs_t.c)}"
        )
        .bindparams(
            sa.bindparam("now", type_=jobs_t.c.updated_at.type),
            sa.bindparam("until", type_=jobs_t.c.locked_until.type),
        )
        .columns(*jobs_t.c)
    )


# Concurrent PostgreSQL claimers skip each other's candidate rows instead of waiting on them.
CLAIM_POSTGRES = _claim(index_hint="", lock=" FOR UPDATE SKIP LOCKED")
# SQLite's planner, without ANALYZE statistics, prefers the status index and sorts every queued
# row: 38 ms a claim with 100,000 jobs queued. INDEXED BY holds it to the queue's own index.
CLAIM_SQLITE = _claim(index_hint=" INDEXED BY ix_media_crawl_jobs_queued", lock="")


@dataclass(frozen=True, slots=True)
class NewJob:
    org_id: int
    feed_id: int | None
    url: str
    url_hash: str
    priority: int = 0
    feed_published_at: datetime | None = None  # the feed entry's date, if it gave one


class JobStore:
    """media_crawl_jobs: the queue between hourly-rss-fetch and crawl-queue."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def enqueue(self, jobs: Sequence[NewJob], *, now: datetime, max_attempts: int = 5) -> int:
        """Queue jobs whose URL the org has neither queued nor stored as an article; returns how many were new."""
        if not jobs:
            return 0
        created = 0
        async with self.db.write() as conn:
            # The driver gets values already in the database's types: SQLAlchemy's per-row parameter
            # processing (three timestamps a row) cost more than the insert itself. The shared values
            # are converted once, by the column type, so they match every other write. The statement
            # itself skips URLs stored as articles, so a batch is one round trip.
            moment = _bind(conn, jobs_t.c.created_at, now)
            unique = _unique(jobs)
            for first in range(0, len(unique), 5000):
                batch = unique[first : first + 5000]
                if self.db.is_postgres:
                    shared = (max_attempts, moment, moment, moment)
                    rows = [
                        (j.org_id, j.feed_id, j.url, j.url_hash, j.priority, j.feed_published_at, *shared, *_key(j))
                        for j in batch
                    ]
                    result = await conn.exec_driver_sql(ENQUEUE_SQL, rows)
                else:
                    document = json.dumps(
                        [(j.org_id, j.feed_id, j.url, j.url_hash, j.priority, _dated(conn, j)) for j in batch]
                    )
                    result = await conn.exec_driver_sql(
                        ENQUEUE_SQLITE, (max_attempts, moment, moment, moment, document)
                    )
                created += max(0, int(result.rowcount or 0))
        return created

    async def known(self, pairs: Sequence[tuple[int, str]]) -> set[tuple[int, str]]:
        """Which (org_id, url_hash) pairs the organisations have already queued or stored as articles.

        Asked per organisation, so each lookup is a probe of the unique (org_id, url_hash) index:
        by url_hash alone no index applies, and every batch of a feed pass read both tables whole.
        """
        found: set[tuple[int, str]] = set()
        by_org: dict[int, set[str]] = {}
        for org_id, digest in pairs:
            by_org.setdefault(org_id, set()).add(digest)
        async with self.db.read() as conn:
            for org_id, digests in sorted(by_org.items()):
                hashes = sorted(digests)
                for first in range(0, len(hashes), 500):
                    chunk = hashes[first : first + 500]
                    for table in (jobs_t, articles_t):
                        rows = await conn.execute(
                            sa.select(table.c.url_hash).where(table.c.org_id == org_id, table.c.url_hash.in_(chunk))
                        )
                        found.update((org_id, h) for (h,) in rows)
        return found

    async def claim(self, *, worker: str, now: datetime, limit: int, lease: timedelta) -> list[JobRecord]:
        """Lease up to `limit` due queued jobs to `worker` with one atomic statement.

        The highest priority goes first, and within a priority the job due longest.

        On PostgreSQL the candidate rows are locked with SKIP LOCKED, so concurrent
        workers take disjoint batches and never wait on each other. On SQLite the write
        transaction itself serialises claimers.
        """
        statement = CLAIM_POSTGRES if self.db.is_postgres else CLAIM_SQLITE
        values = {"worker": worker, "until": now + lease, "now": now, "limit": limit}
        async with self.db.write() as conn:
            rows = (await conn.execute(statement, values)).all()
        return sorted((_job(r) for r in rows), key=lambda j: j.id)

    async def extend_leases(self, job_ids: Sequence[int], *, worker: str, until: datetime) -> None:
        """Keep this worker's leases alive while it is still working on them."""
        if not job_ids:
            return
        async with self.db.write() as conn:
            await conn.execute(
                jobs_t.update()
                .where(
                    jobs_t.c.id.in_(list(job_ids)), jobs_t.c.locked_by == worker, jobs_t.c.status == JobStatus.RUNNING
                )
                .values(locked_until=until)
            )

    async def release(
        self,
        job_ids: Sequence[int],
        *,
        worker: str,
        now: datetime,
        run_after: datetime | None = None,
        error: str | None = None,
    ) -> int:
        """Give this worker's leased jobs back to the queue, their attempt not counted: at once (a cancelled
        run), or from `run_after` with `error` recorded (a host cooling down, to which nothing was sent)."""
        if not job_ids:
            return 0
        noted = {} if error is None else {"last_error": error}
        async with self.db.write() as conn:
            result = await conn.execute(
                jobs_t.update()
                .where(
                    jobs_t.c.id.in_(list(job_ids)), jobs_t.c.locked_by == worker, jobs_t.c.status == JobStatus.RUNNING
                )
                .values(
                    status=JobStatus.QUEUED,
                    locked_by=None,
                    locked_until=None,
                    attempts=sa.func.max(jobs_t.c.attempts - 1, 0)
                    if not self.db.is_postgres
                    else sa.func.greatest(jobs_t.c.attempts - 1, 0),
                    run_after=run_after or now,
                    updated_at=now,
                    **noted,
                )
            )
            return int(result.rowcount or 0)

    async def complete(self, job_id: int, *, worker: str, now: datetime, article_id: int | None) -> bool:
        """Mark a leased job succeeded; False if the lease was lost to another worker meanwhile."""
        return await self._finish(
            job_id, worker, status=JobStatus.SUCCEEDED, now=now, finished_at=now, article_id=article_id, last_error=None
        )

    async def fail(self, job_id: int, *, worker: str, now: datetime, error: str) -> bool:
        """Fail a leased job for good (an error another attempt will not fix); False if the lease was lost."""
        return await self._finish(job_id, worker, status=JobStatus.FAILED, now=now, finished_at=now, last_error=error)

    async def complete_many(self, job_ids: Sequence[int], *, worker: str, now: datetime) -> int:
        """Mark many leased jobs succeeded in one statement; returns how many this worker still held."""
        if not job_ids:
            return 0
        async with self.db.write() as conn:
            result = await conn.execute(
                jobs_t.update()
                .where(
                    jobs_t.c.id.in_(list(job_ids)), jobs_t.c.status == JobStatus.RUNNING, jobs_t.c.locked_by == worker
                )
                .values(
                    status=JobStatus.SUCCEEDED,
                    locked_by=None,
                    locked_until=None,
                    updated_at=now,
                    finished_at=now,
                    last_error=None,
                )
            )
            return int(result.rowcount or 0)

    async def complete_with_articles(
        self, done: Sequence[tuple[int, int | None]], *, worker: str, now: datetime
    ) -> set[int]:
        """Mark many leased jobs succeeded, each with its article, in one transaction.

        Returns the ids of the jobs this worker still held (the others lost their lease
        meanwhile and are left as they are).
        """
        if not done:
            return set()
        article_of = dict(done)
        held: set[int] = set()
        async with self.db.write() as conn:
            ids = sorted(article_of)
            for start in range(0, len(ids), 500):
                query = sa.select(jobs_t.c.id).where(
                    jobs_t.c.id.in_(ids[start : start + 500]),
                    jobs_t.c.status == JobStatus.RUNNING,
                    jobs_t.c.locked_by == worker,
                )
                if self.db.is_postgres:
                    query = query.with_for_update()
                held.update(job_id for (job_id,) in await conn.execute(query))
            if not held:
                return held
            statement = (
                jobs_t.update()
                .where(jobs_t.c.id == sa.bindparam("b_id"))
                .values(
                    status=JobStatus.SUCCEEDED,
                    locked_by=None,
                    locked_until=None,
                    updated_at=now,
                    finished_at=now,
                    last_error=None,
                    article_id=sa.bindparam("b_article_id"),
                )
            )
            await conn.execute(statement, [{"b_id": i, "b_article_id": article_of[i]} for i in sorted(held)])
        return held

    async def retry_or_fail(self, job: JobRecord, *, worker: str, now: datetime, error: str, backoff: timedelta) -> str:
        """Put a failed attempt back in the queue after `backoff`, or fail it for good at max_attempts."""
        if job.attempts >= job.max_attempts:
            await self._finish(job.id, worker, status=JobStatus.FAILED, now=now, finished_at=now, last_error=error)
            return JobStatus.FAILED
        await self._finish(job.id, worker, status=JobStatus.QUEUED, now=now, run_after=now + backoff, last_error=error)
        return "retried"

    async def _finish(self, job_id: int, worker: str, *, status: str, now: datetime, **values: Any) -> bool:
        if "last_error" in values and values["last_error"] is not None:
            values["last_error"] = values["last_error"][:ERROR_LIMIT]
        async with self.db.write() as conn:
            result = await conn.execute(
                jobs_t.update()
                .where(jobs_t.c.id == job_id, jobs_t.c.status == JobStatus.RUNNING, jobs_t.c.locked_by == worker)
                .values(status=status, locked_by=None, locked_until=None, updated_at=now, **values)
            )
            return bool(result.rowcount)

    async def release_expired(self, *, now: datetime) -> int:
        """Return to the queue every running job whose lease ran out (its worker died)."""
        async with self.db.write() as conn:
            result = await conn.execute(
                jobs_t.update()
                .where(jobs_t.c.status == JobStatus.RUNNING, jobs_t.c.locked_until < now)
                .values(status=JobStatus.QUEUED, locked_by=None, locked_until=None, run_after=now, updated_at=now)
            )
            return int(result.rowcount or 0)

    async def retry_failed(self, job_ids: Sequence[int] | None, *, now: datetime) -> int:
        """Queue failed jobs again with a fresh attempt budget (all failed jobs when job_ids is None)."""
        condition = jobs_t.c.status == JobStatus.FAILED
        if job_ids is not None:
            condition = condition & jobs_t.c.id.in_(list(job_ids))
        async with self.db.write() as conn:
            result = await conn.execute(
                jobs_t.update()
                .where(condition)
                .values(status=JobStatus.QUEUED, attempts=0, run_after=now, finished_at=None, updated_at=now)
            )
            return int(result.rowcount or 0)

    async def retry_named(self, job_ids: Sequence[int], *, now: datetime) -> tuple[int, dict[int, str]]:
        """Queue the named jobs that are failed again, in one transaction with reading the others' status:
        how many were queued, and every named job's status before (an id that names no job is absent)."""
        async with self.db.write() as conn:
            query = sa.select(jobs_t.c.id, jobs_t.c.status).where(jobs_t.c.id.in_(sorted(set(job_ids))))
            statuses = {int(row.id): str(row.status) for row in await conn.execute(query)}
            failed = [i for i, status in statuses.items() if status == JobStatus.FAILED]
            if failed:
                await conn.execute(
                    jobs_t.update()
                    .where(jobs_t.c.id.in_(failed) & (jobs_t.c.status == JobStatus.FAILED))
                    .values(status=JobStatus.QUEUED, attempts=0, run_after=now, finished_at=None, updated_at=now)
                )
        return len(failed), statuses

    async def get(self, job_id: int) -> JobRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(jobs_t).where(jobs_t.c.id == job_id))).first()
        return _job(row) if row else None

    async def list_jobs(
        self,
        *,
        status: str | None = None,
        org_id: int | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[JobRecord]:
        query = sa.select(jobs_t).order_by(jobs_t.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(jobs_t.c.status == status)
        if org_id is not None:
            query = query.where(jobs_t.c.org_id == org_id)
        if before_id is not None:
            query = query.where(jobs_t.c.id < before_id)
        async with self.db.read() as conn:
            return [_job(r) for r in await conn.execute(query)]

    async def counts_by_status(self, org_id: int | None = None) -> dict[str, int]:
        query = sa.select(jobs_t.c.status, sa.func.count()).group_by(jobs_t.c.status)
        if org_id is not None:
            query = query.where(jobs_t.c.org_id == org_id)
        async with self.db.read() as conn:
            return {status: int(n) for status, n in await conn.execute(query)}


def _job(row: sa.Row[Any]) -> JobRecord:
    values = row._asdict()  # one dict per row: row._mapping builds a new view at every access
    values["status"] = JobStatus(values["status"])
    return JobRecord(**{name: values[name] for name in JobRecord.__slots__})


def _bind(conn: AsyncConnection, column: sa.Column[Any], value: Any) -> Any:
    """`value` as the driver receives it for `column` (the column type's own conversion)."""
    processor = column.type.bind_processor(conn.dialect)
    return processor(value) if processor is not None else value


def _key(job: NewJob) -> tuple[int, str]:
    return job.org_id, job.url_hash


def _dated(conn: AsyncConnection, job: NewJob) -> str | None:
    """The job's feed date as SQLite stores it, for the JSON document of a batch.

    str() of the naive UTC datetime is the text sqlite3's own adapter writes for the other columns.
    """
    if job.feed_published_at is None:
        return None
    return str(_bind(conn, jobs_t.c.feed_published_at, job.feed_published_at))


def _unique(jobs: Sequence[NewJob]) -> list[NewJob]:
    """One job per (org, url_hash), its URL cleaned as the url column's type would: enqueue's SQL bypasses the type."""
    seen: set[tuple[int, str]] = set()
    unique = []
    for job in jobs:
        key = (job.org_id, job.url_hash)
        if key not in seen:
            seen.add(key)
            url = clean_text(job.url)
            unique.append(job if url is job.url else dataclasses.replace(job, url=url))
    return unique
