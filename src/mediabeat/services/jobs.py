"""Crawl jobs: the queue as admins see it, and queueing failed jobs again."""

from __future__ import annotations

from collections.abc import Sequence

from mediabeat.clock import Clock
from mediabeat.db.stores.jobs import JobStore
from mediabeat.domain.content import (
    Actor,
    JobFilter,
    JobNotFailed,
    JobNotFound,
    JobRecord,
    JobStatus,
    RetryOutcome,
)
from mediabeat.domain.ids import clamp_id, valid_id
from mediabeat.services.audit import AuditService


class JobService:
    """List crawl jobs and retry failed ones; retries are audited."""

    def __init__(self, *, store: JobStore, audit: AuditService, clock: Clock) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock

    async def list(self, query: JobFilter) -> list[JobRecord]:
        return await self.store.list_jobs(
            status=query.status,
            org_id=query.org_id,
            limit=query.limit,
            before_id=None if query.before_id is None else clamp_id(query.before_id),
        )

    async def counts(self, org_id: int | None = None) -> dict[str, int]:
        """Jobs per status (statuses with no job are left out)."""
        return await self.store.counts_by_status(org_id)

    async def get(self, job_id: int) -> JobRecord:
        job = await self.store.get(job_id) if valid_id(job_id) else None
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def retry_failed(self, job_ids: Sequence[int] | None, actor: Actor) -> RetryOutcome:
        """Queue failed jobs again with a fresh attempt budget (every failed job when job_ids is None),
        saying of each named id that was not queued whether it names no job or a job that is not failed."""
        if job_ids is None:
            outcome = RetryOutcome(await self.store.retry_failed(None, now=self.clock.now()))
        else:
            named = sorted(set(job_ids))
            valid = [i for i in named if valid_id(i)]
            count, statuses = await self.store.retry_named(valid, now=self.clock.now()) if valid else (0, {})
            outcome = RetryOutcome(
                count,
                not_found=tuple(i for i in named if i not in statuses),
                not_failed=tuple(
                    (i, JobStatus(status)) for i, status in sorted(statuses.items()) if status != JobStatus.FAILED
                ),
            )
        details = {"ids": None if job_ids is None else sorted(set(job_ids)), "requeued": outcome.requeued}
        await self.audit.record(actor, "jobs.retry", target_type="job", details=details)
        return outcome

    async def retry_one(self, job_id: int, actor: Actor) -> int:
        """Queue one failed job again; JobNotFound, or JobNotFailed when it is not failed."""
        count = await self.store.retry_failed([job_id], now=self.clock.now()) if valid_id(job_id) else 0
        if count == 0:
            job = await self.get(job_id)
            raise JobNotFailed(job_id, job.status)
        await self.audit.record(actor, "jobs.retry", target_type="job", target_id=job_id, details={"requeued": count})
        return count
