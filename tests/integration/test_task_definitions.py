"""User-defined tasks and chains: create from a registered handler, run B after A, delete."""

from __future__ import annotations

import asyncio

import pytest

from mediabeat.clock import FakeClock
from mediabeat.db.engine import Database
from mediabeat.domain.scheduler import RunFilter
from mediabeat.scheduler.service import NewTask, TaskChanges, TaskValidationError
from mediabeat.tasks.base import RunContext, SkipRun
from mediabeat.testing import BlockingHandler, FailingHandler, RecordingHandler, build_test_scheduler
from tests.integration.test_scheduler_service import START


async def test_create_validates_and_schedules(db: Database) -> None:
    service, _ = build_test_scheduler(db, clock=FakeClock(START), handlers={"report": RecordingHandler()})
    task = await service.create_task(
        NewTask(name="weekly-report", handler="report", cron="0 8 * * MON", timezone="Europe/Berlin")
    )
    assert task.next_run_at is not None and task.next_run_at.isoformat() == "2026-03-09T07:00:00+00:00"
    bad = {
        "name": NewTask(name="Weekly Report", handler="report", cron="@daily"),
        "handler": NewTask(name="x", handler="no_such_handler", cron="@daily"),
        "cron": NewTask(name="y", handler="report", cron="every day"),
        "timezone": NewTask(name="z", handler="report", cron="@daily", timezone="Moon/Base"),
    }
    for field, spec in bad.items():
        with pytest.raises(TaskValidationError) as error:
            await service.create_task(spec)
        assert error.value.field == field
    with pytest.raises(TaskValidationError, match="exists already"):
        await service.create_task(NewTask(name="weekly-report", handler="report", cron="@daily"))


async def test_a_chained_task_runs_after_its_upstream_succeeds(db: Database) -> None:
    fetch, crawl = RecordingHandler(), RecordingHandler()
    service, _ = build_test_scheduler(db, clock=FakeClock(START), handlers={"fetch": fetch, "crawl": crawl})
    await service.create_task(NewTask(name="fetch", handler="fetch", cron="0 * * * *"))
    await service.create_task(NewTask(name="crawl", handler="crawl", cron="0 3 * * *", after=("fetch",)))
    upstream = await service.run_now_and_wait("fetch")
    await service.wait_idle(within=10)
    (chained,) = await service.list_runs(RunFilter(task="crawl"))
    assert chained.trigger == "dependency" and chained.status == "succeeded"
    assert chained.triggered_by == f"fetch run {upstream.id}"
    assert chained.scheduled_for == upstream.scheduled_for


async def test_no_chain_after_a_failure_and_no_loops(db: Database) -> None:
    service, _ = build_test_scheduler(
        db, clock=FakeClock(START), handlers={"fetch": FailingHandler(), "crawl": RecordingHandler()}
    )
    await service.create_task(NewTask(name="fetch", handler="fetch", cron="0 * * * *"))
    crawl = await service.create_task(NewTask(name="crawl", handler="crawl", cron="0 3 * * *", after=("fetch",)))
    await service.run_now_and_wait("fetch")
    await service.wait_idle(within=10)
    assert await service.list_runs(RunFilter(task="crawl")) == []
    fetch = await service.get_task_by_name("fetch")
    with pytest.raises(TaskValidationError, match="would make a loop: fetch -> crawl -> fetch"):
        await service.update_task(fetch.id, TaskChanges(after=("crawl",)))
    with pytest.raises(TaskValidationError, match="cannot run after itself"):
        await service.update_task(crawl.id, TaskChanges(after=("crawl",)))
    cleared = await service.update_task(crawl.id, TaskChanges(after=("",)))
    assert (await service.task_chains(cleared.id)).after_task_id is None


async def test_delete_refuses_while_running(db: Database) -> None:
    blocking = BlockingHandler()
    service, _ = build_test_scheduler(db, clock=FakeClock(START), handlers={"slow": blocking})
    task = await service.create_task(NewTask(name="slow", handler="slow", cron="@hourly"))
    await service.run_now("slow")
    await asyncio.wait_for(blocking.started.wait(), 5)
    with pytest.raises(TaskValidationError, match="still running"):
        await service.delete_task(task.id)
    blocking.release()
    await service.wait_idle(within=10)
    await service.delete_task(task.id)
    assert [t.name for t in await service.list_tasks()] == [
        "crawl-queue",
        "hourly-rss-fetch",
        "monitor-deliveries",
        "nightly-cleanup",
        "websub-renew",
    ]


class OnlyWhenWorkWaits:
    """Runs only when its condition holds, like a crawl that needs queued jobs."""

    def __init__(self) -> None:
        self.work_waiting = False

    async def __call__(self, ctx: RunContext) -> dict[str, int]:
        if not self.work_waiting:
            raise SkipRun("no queued work")
        return {"done": 1}


async def test_a_handler_can_skip_a_run_whose_condition_is_not_met(db: Database) -> None:
    handler = OnlyWhenWorkWaits()
    service, _ = build_test_scheduler(db, clock=FakeClock(START), handlers={"drain": handler})
    await service.create_task(NewTask(name="drain", handler="drain", cron="*/10 * * * *"))
    skipped = await service.run_now_and_wait("drain")
    assert (skipped.status, skipped.error) == ("skipped", "skipped: no queued work")
    handler.work_waiting = True
    assert (await service.run_now_and_wait("drain")).status == "succeeded"
