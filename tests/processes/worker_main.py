"""A `mediabeat worker` with test handlers: `noop`, `hang` (until cancelled), `job_drain` (slow no-op crawl jobs).

Run as `python -m tests.processes.worker_main`. It is the real worker (build_services and
run_worker); only the registry has more handlers. With MB_TEST_RUN_AT_START=<task> it
starts a manual run of that task as soon as it is up, or, with MB_TEST_GO_FILE=<path> too, as soon
as that file exists (so several workers start together).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mediabeat.app import build_services
from mediabeat.cli.common import setup_logging
from mediabeat.cli.serve_cmd import run_worker
from mediabeat.db.engine import Database
from mediabeat.db.stores.jobs import JobStore
from mediabeat.db.tables import media_crawl_jobs
from mediabeat.settings import load_settings
from mediabeat.tasks.base import RunContext

# Every transition of a crawl job to `succeeded` is logged by a trigger, in the same transaction,
# so a test can prove that no job completed twice.
COMPLETIONS_DDL = """
CREATE TABLE test_completions (job_id INTEGER NOT NULL, node TEXT NOT NULL);
CREATE FUNCTION log_completion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test_completions (job_id, node) VALUES (NEW.id, OLD.locked_by);
    RETURN NEW;
END $$;
CREATE TRIGGER log_completion AFTER UPDATE ON media_crawl_jobs
    FOR EACH ROW WHEN (NEW.status = 'succeeded' AND OLD.status IS DISTINCT FROM 'succeeded')
    EXECUTE FUNCTION log_completion();
"""


async def noop(ctx: RunContext) -> Mapping[str, Any]:
    return {}


async def hang(ctx: RunContext) -> Mapping[str, Any]:
    """Waits until cancelled (the run-control test cancels it from another process)."""
    await asyncio.Event().wait()
    return {}


class JobDrain:
    """Claims crawl jobs in batches as leases, "crawls" each for a moment, completes it; stops when the queue is empty.

    A trigger (COMPLETIONS_DDL) logs each completion.
    """

    def __init__(self, db: Database, node_id: str) -> None:
        self.db = db
        self.store = JobStore(db)
        self.node_id = node_id
        self.delay = float(os.environ.get("MB_TEST_JOB_SECONDS", "0.2"))
        self.batch = int(os.environ.get("MB_TEST_JOB_BATCH", "4"))
        self.lease = timedelta(seconds=float(os.environ.get("MB_TEST_JOB_LEASE_SECONDS", "5")))

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        done = 0
        while True:
            jobs = await self.store.claim(
                worker=self.node_id, now=datetime.now(UTC), limit=self.batch, lease=self.lease
            )
            if not jobs:
                if await self._unfinished() == 0:
                    return {"completed": done}
                await asyncio.sleep(0.2)
                continue
            for job in jobs:
                await asyncio.sleep(self.delay)
                if await self.store.complete(job.id, worker=self.node_id, now=datetime.now(UTC), article_id=None):
                    done += 1

    async def _unfinished(self) -> int:
        async with self.db.read() as conn:
            query = sa.select(sa.func.count()).where(media_crawl_jobs.c.status.in_(("queued", "running")))
            return int((await conn.execute(query)).scalar_one())


async def main() -> None:
    settings = load_settings()
    setup_logging(settings)
    services = build_services(settings, role="worker")
    services.registry.register("noop", noop)
    services.registry.register("hang", hang)
    services.registry.register("job_drain", JobDrain(services.db, services.scheduler.node_id))
    starters: set[asyncio.Task[None]] = set()
    if task := os.environ.get("MB_TEST_RUN_AT_START"):
        if go_file := os.environ.get("MB_TEST_GO_FILE"):
            # Start the run once the test says go (every worker up), while the worker loop runs.
            starters.add(asyncio.create_task(run_when_told(services.scheduler.run_now, task, Path(go_file))))
        else:
            await services.scheduler.run_now(task, triggered_by="test")
    await run_worker(services)


async def run_when_told(run_now: Callable[..., Awaitable[int]], task: str, go_file: Path) -> None:
    while not go_file.exists():
        await asyncio.sleep(0.05)
    await run_now(task, triggered_by="test")


if __name__ == "__main__":
    asyncio.run(main())
