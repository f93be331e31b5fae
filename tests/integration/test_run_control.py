"""Run control on a real database: cancel a run (here or on another node), the grace period, and the pause."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest

from mediabeat.clock import FakeClock
from mediabeat.crawler.urls import url_hash
from mediabeat.db.engine import Database
from mediabeat.db.stores.chains import ChainStore
from mediabeat.db.stores.jobs import JobStore, NewJob
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.domain.scheduler import ChainKind, RunFilter, RunNotFound, RunNotRunning
from mediabeat.scheduler.alerts import Alert
from mediabeat.scheduler.service import NewTask, SchedulerTimings
from mediabeat.tasks.base import RunContext
from mediabeat.testing import BlockingHandler, RecordingHandler, build_test_scheduler
from tests.crawler_helpers import crawler_registry
from tests.integration.api_fixtures import ADMIN_EMAIL, ApiEnv, assert_error
from tests.integration.seeds import only_cleanup_seeded
from tests.integration.test_dashboard_pages import signed_in
from tests.loopback import LoopbackServer, Route

START = datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC)


class RecordingAlerts:
    """An alert channel that remembers (kind, run id) of every alert it would send."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def dispatch(self, alert: Alert) -> None:
        assert alert.run is not None
        self.seen.append((alert.kind, alert.run.id))

    async def drain(self) -> None:
        return None


LATER = START.replace(year=2027)


async def add_task(db: Database, name: str, cron: str = "0 * * * *", **values: object) -> int:
    task = await SchedulerStore(db).create_task(
        {"name": name, "handler": values.pop("handler", name), "cron": cron, **values}, START
    )
    return task.id


async def test_a_run_cancelled_on_its_own_node_ends_cancelled_with_who(db: Database) -> None:
    clock = FakeClock(START)
    blocking = BlockingHandler()
    await add_task(db, "slow", next_run_at=LATER)
    service, _ = build_test_scheduler(db, clock=clock, handlers={"slow": blocking})
    run_id = await service.run_now("slow", triggered_by="cli")
    await asyncio.wait_for(blocking.started.wait(), 5)

    requested = await service.cancel_run(run_id, by="ops@example.test")
    assert requested.status == "running" and requested.cancelled_by == "ops@example.test"
    run = await asyncio.wait_for(service.wait_for_run(run_id), 5)
    assert run.status == "cancelled"
    assert run.cancelled_by == "ops@example.test" and run.cancel_requested_at is not None
    assert run.error == "cancelled by ops@example.test"
    assert (await service.get_task_by_name("slow")).last_status == "cancelled"
    assert not service.active_run_ids

    with pytest.raises(RunNotRunning, match="already finished \\(cancelled\\)"):
        await service.cancel_run(run_id, by="ops@example.test")
    with pytest.raises(RunNotFound):
        await service.cancel_run(999_999, by="ops@example.test")


async def test_a_cancel_asked_on_one_node_stops_the_run_on_the_node_executing_it(db: Database) -> None:
    clock = FakeClock(START)
    blocking = BlockingHandler()
    await add_task(db, "slow", next_run_at=LATER)
    runner, runner_loop = build_test_scheduler(db, clock=clock, handlers={"slow": blocking}, node_id="runner")
    other, _ = build_test_scheduler(db, clock=clock, handlers={}, node_id="other")
    run_id = await runner.run_now("slow", triggered_by="cli")
    await asyncio.wait_for(blocking.started.wait(), 5)

    await other.cancel_run(run_id, by="cli:ops")
    assert (await other.get_run(run_id)).status == "running"  # type: ignore[union-attr]
    await runner.heartbeat()  # the executing node notices at its heartbeat
    run = await asyncio.wait_for(runner.wait_for_run(run_id), 5)
    assert (run.status, run.cancelled_by, run.node_id) == ("cancelled", "cli:ops", "runner")

    # The loop's step notices too (another node's cancel wakes it on PostgreSQL).
    second = await runner.run_now("slow", triggered_by="cli")
    await other.cancel_run(second, by="cli:ops")
    await runner_loop.step()
    assert (await asyncio.wait_for(runner.wait_for_run(second), 5)).status == "cancelled"
    await runner.wait_idle(within=5)  # the step also started the seeded tasks, due at once


async def test_a_handler_that_ignores_the_cancel_is_left_behind_after_the_grace_period(db: Database) -> None:
    clock = FakeClock(START)
    release = asyncio.Event()
    stubborn_started = asyncio.Event()

    async def stubborn(ctx: RunContext) -> dict[str, object]:
        stubborn_started.set()
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # swallows every cancellation
        return {}

    await add_task(db, "stubborn", next_run_at=LATER)
    service, _ = build_test_scheduler(
        db,
        clock=clock,
        handlers={"stubborn": stubborn},
        timings=SchedulerTimings(cancel_grace=timedelta(seconds=0.2)),
    )
    run_id = await service.run_now("stubborn", triggered_by="cli")
    await asyncio.wait_for(stubborn_started.wait(), 5)
    await service.cancel_run(run_id, by="ops")
    run = await asyncio.wait_for(service.wait_for_run(run_id), 5)
    assert run.status == "cancelled"
    assert run.error and "did not stop within 0.2 s" in run.error and "slot freed" in run.error
    assert not service.active_run_ids  # the slot is free
    release.set()
    await asyncio.sleep(0.05)  # the left-behind handler ends on its own, and nothing records it again
    assert (await service.get_run(run_id)).status == "cancelled"  # type: ignore[union-attr]


async def test_a_handed_over_run_no_node_started_is_cancelled_at_once(db: Database) -> None:
    clock = FakeClock(START)
    await add_task(db, "report", next_run_at=LATER)
    shell, _ = build_test_scheduler(db, clock=clock, handlers={}, node_id="shell")
    run_id = await shell.runner.hand_over(await shell.get_task_by_name("report"), triggered_by="cli")
    run = await shell.cancel_run(run_id, by="cli:ops")
    assert run.status == "cancelled" and run.error == "cancelled by cli:ops before any node started it"
    node, _ = build_test_scheduler(db, clock=clock, handlers={"report": RecordingHandler()}, node_id="node")
    assert await node.adopt_handed_runs() == 0


async def test_pause_stops_scheduled_and_chained_runs_everywhere_and_resume_follows_the_misfire_policy(
    db: Database,
) -> None:
    await only_cleanup_seeded(db)
    clock = FakeClock(START)
    handler = RecordingHandler()
    hourly = await add_task(db, "hourly", "0 * * * *", handler="work", misfire_policy="run_once")
    after = await add_task(db, "after", "0 0 1 1 *", handler="work", next_run_at=LATER)
    await ChainStore(db).replace(after, {ChainKind.SUCCESS: [hourly]}, lambda links: None)
    await SchedulerStore(db).update_task(1, {"enabled": False}, START)  # the seeded cleanup task
    a, loop_a = build_test_scheduler(db, clock=clock, handlers={"work": handler}, node_id="a")
    b, loop_b = build_test_scheduler(db, clock=clock, handlers={"work": handler}, node_id="b")
    await loop_a.step()  # never run: due at once; its chained task follows
    await a.wait_idle(within=5)
    assert sorted(c.task_name for c in handler.calls) == ["after", "hourly"]

    state = await b.pause(by="cli:ops", reason="database maintenance")
    assert (state.paused, state.reason, state.changed_by) == (True, "database maintenance", "cli:ops")
    clock.set(datetime(2026, 3, 2, 12, 30, tzinfo=UTC))  # 10:00, 11:00 and 12:00 came due
    for loop in (loop_a, loop_b):
        step = await loop.step()
        assert step.started == 0
    # The claim itself reads the switch: a node that skipped the check still claims nothing.
    assert (await a.execute_due_tasks(), await b.execute_due_tasks()) == (0, 0)

    manual = await a.run_now_and_wait("hourly", triggered_by="cli")  # manual runs still start
    assert manual.status == "succeeded"
    await a.wait_idle(within=5)
    assert [c.task_name for c in handler.calls].count("after") == 1  # no chained run while paused

    assert not (await a.resume(by="cli:ops")).paused
    assert (await loop_b.step()).started == 1  # run_once: one run for the three missed occurrences
    await b.wait_idle(within=5)
    runs = await b.list_runs(RunFilter(task="hourly", trigger=None), limit=10)
    scheduled = [r for r in runs if r.trigger == "schedule"]
    assert scheduled[0].scheduled_for == datetime(2026, 3, 2, 12, tzinfo=UTC) and scheduled[0].missed == 2
    assert [c.task_name for c in handler.calls].count("after") == 2  # chains start again


# -- through the API and the dashboard -----------------------------------------------------------------

B = "/api/v1/scheduler"


async def test_the_api_cancels_a_run_and_says_409_for_a_finished_one(api: ApiEnv) -> None:
    blocking = BlockingHandler()
    api.services.registry.register("blocking", blocking)
    try:
        async with api.admin() as client:
            await client.post(f"{B}/tasks", json={"name": "slow-one", "handler": "blocking", "cron": "@daily"})
            run_id = (await client.post(f"{B}/tasks/slow-one/run")).json()["id"]
            await asyncio.wait_for(blocking.started.wait(), 5)
            async with api.member() as member:
                assert_error(await member.post(f"{B}/runs/{run_id}/cancel"), 403)
            cancelled = await client.post(f"{B}/runs/{run_id}/cancel")
            assert cancelled.status_code == 202, cancelled.text
            assert cancelled.json()["cancelled_by"] == ADMIN_EMAIL and cancelled.json()["cancel_requested_at"]
            await api.services.scheduler.wait_idle(within=5)
            run = (await client.get(f"{B}/runs/{run_id}")).json()
            assert (run["status"], run["cancelled_by"], run["error"]) == (
                "cancelled",
                ADMIN_EMAIL,
                f"cancelled by {ADMIN_EMAIL}",
            )
            listed = (await client.get(f"{B}/runs", params={"status": "cancelled"})).json()["items"]
            assert [r["id"] for r in listed] == [run_id]
            again = assert_error(await client.post(f"{B}/runs/{run_id}/cancel"), 409, "run_finished")
            assert "already finished (cancelled)" in again["message"] and again["details"]["status"] == "cancelled"
            assert_error(await client.post(f"{B}/runs/999999/cancel"), 404)
        events = await api.auth.audit.list(action="run.cancel")
        assert [e.target_id for e in events] == [str(run_id)]
    finally:
        blocking.release()


async def test_the_api_pauses_and_resumes_and_a_manual_run_says_it_is_paused(api: ApiEnv) -> None:
    async with api.admin() as client:
        assert (await client.get(f"{B}/pause")).json()["paused"] is False
        paused = await client.post(f"{B}/pause", json={"reason": "upgrading PostgreSQL"})
        assert paused.status_code == 200 and paused.json()["reason"] == "upgrading PostgreSQL"
        assert (await client.get(f"{B}/pause")).json() == paused.json()
        assert_error(await client.post(f"{B}/pause", json={"reason": "x" * 501}), 422)
        run = await client.post(f"{B}/tasks/nightly-cleanup/run", params={"wait": "true"})
        assert run.status_code == 200 and run.json()["status"] == "succeeded"
        assert "paused (upgrading PostgreSQL); manual runs still start" in run.json()["notice"]
        async with api.member() as member:
            assert_error(await member.post(f"{B}/pause"), 403)
        resumed = await client.post(f"{B}/resume")
        assert resumed.json()["paused"] is False and resumed.json()["changed_by"] == ADMIN_EMAIL
        run = await client.post(f"{B}/tasks/nightly-cleanup/run", params={"wait": "true"})
        assert run.json()["notice"] is None
    assert [e.action for e in await api.auth.audit.list(action="scheduler.pause")] == ["scheduler.pause"]


async def test_the_dashboard_has_a_cancel_button_a_pause_switch_and_a_banner_on_every_page(api: ApiEnv) -> None:
    blocking = BlockingHandler()
    api.services.registry.register("blocking", blocking)
    try:
        async with signed_in(api) as client:
            page = (await client.get("/app/admin/scheduler")).text
            assert 'data-action="scheduler-pause"' in page and 'id="paused-banner"' not in page
            await api.services.scheduler.create_task(NewTask(name="slow-one", handler="blocking", cron="@daily"))
            run_id = await api.services.scheduler.run_now("slow-one", triggered_by=ADMIN_EMAIL)
            await blocking.started.wait()
            page = (await client.get(f"/app/admin/scheduler/runs/{run_id}")).text
            assert f'data-action="cancel-run" data-run-id="{run_id}"' in page
            await api.services.scheduler.pause(by=ADMIN_EMAIL, reason="maintenance <b>now</b>")
            for path in ["/app/admin/scheduler", "/app/admin/scheduler/runs", "/app/admin/feeds", "/app/admin/jobs"]:
                html = (await client.get(path)).text
                assert 'id="paused-banner"' in html and "maintenance &lt;b&gt;now&lt;/b&gt;" in html, path
            assert 'data-action="scheduler-resume"' in (await client.get("/app/admin/scheduler")).text
            await api.services.scheduler.cancel_run(run_id, by=ADMIN_EMAIL)
            await api.services.scheduler.wait_idle(within=5)
            page = (await client.get(f"/app/admin/scheduler/runs/{run_id}")).text
            assert 'id="run-cancelled"' in page and f"Cancelled by {ADMIN_EMAIL}" in page
            assert 'data-action="cancel-run"' not in page
    finally:
        blocking.release()


async def test_a_cancelled_crawl_stores_what_it_finished_and_queues_the_rest_for_the_next_run(
    db: Database, site: LoopbackServer
) -> None:
    body = b"<html lang='en'><body><article><h1>T</h1>" + b"<p>Words of a real article here.</p>" * 30 + b"</article>"
    site.routes["/robots.txt"] = Route(status=404)
    site.routes["/fast"] = Route(body=body, headers={"Content-Type": "text/html"})
    for path in ("/slow-1", "/slow-2"):
        site.routes[path] = Route(body=body, headers={"Content-Type": "text/html"}, delay=60)
    org = (await OrgStore(db).create("newsroom", now=START)).id
    jobs = JobStore(db)
    urls = [site.url(p) for p in ("/fast", "/slow-1", "/slow-2")]
    await jobs.enqueue([NewJob(org, None, u, url_hash(u)) for u in urls], now=START)
    clock = FakeClock(START)
    registry = crawler_registry(db, clock, crawl_batch=10)
    service, _ = build_test_scheduler(db, clock=clock, handlers={"crawl_queue": registry.get("crawl_queue")})
    try:
        run_id = await service.run_now("crawl-queue", triggered_by="cli")
        async with asyncio.timeout(20):
            while not any(j.status == "succeeded" for j in await jobs.list_jobs()):
                await asyncio.sleep(0.05)
        await service.cancel_run(run_id, by="cli:ops")
        run = await asyncio.wait_for(service.wait_for_run(run_id), 10)
        assert (run.status, run.error) == ("cancelled", "cancelled by cli:ops")
        by_url = {j.url: j for j in await jobs.list_jobs()}
        assert by_url[urls[0]].status == "succeeded"
        for url in urls[1:]:  # back in the queue at once, the cancelled attempt not counted
            job = by_url[url]
            assert (job.status, job.attempts, job.locked_by) == ("queued", 0, None), url
    finally:
        await registry.get("crawl_queue").aclose()  # type: ignore[attr-defined]


async def test_a_failed_run_is_retried_with_backoff_before_the_next_occurrence_and_alerts_wait(db: Database) -> None:
    await only_cleanup_seeded(db)
    clock = FakeClock(START)
    await SchedulerStore(db).update_task(1, {"enabled": False}, START)  # the seeded cleanup task
    outcomes = ["fail", "fail", "fail", "ok"]

    async def flaky(ctx: RunContext) -> dict[str, object]:
        if outcomes.pop(0) == "fail":
            raise RuntimeError("the feed server exploded")
        return {"ok": True}

    await add_task(db, "hourly", "0 * * * *", handler="flaky", max_retries=2, retry_backoff_s=60)
    alerts = RecordingAlerts()
    service, loop = build_test_scheduler(db, clock=clock, handlers={"flaky": flaky}, alerts=alerts)
    await loop.step()  # never run: due at once, and fails
    await service.wait_idle(within=5)
    task = await service.get_task_by_name("hourly")
    assert task.retry_at == START + timedelta(seconds=60) and alerts.seen == []  # no alert yet
    assert (await loop.step()).started == 0  # not yet due

    clock.advance(60)
    assert (await loop.step()).started == 1
    await service.wait_idle(within=5)
    assert (await service.get_task_by_name("hourly")).retry_at == clock.now() + timedelta(seconds=120)  # doubled
    assert alerts.seen == []
    clock.advance(120)
    assert (await loop.step()).started == 1
    await service.wait_idle(within=5)
    runs = await service.list_runs(RunFilter(task="hourly"), limit=10)
    assert [(r.trigger, r.status, r.attempt) for r in reversed(runs)] == [
        ("schedule", "failed", 0),
        ("retry", "failed", 1),
        ("retry", "failed", 2),
    ]
    assert runs[0].retry_of == runs[1].id and runs[1].retry_of == runs[2].id
    assert (await service.get_task_by_name("hourly")).retry_at is None  # exhausted
    assert alerts.seen == [("failure", runs[0].id)]  # one alert, when the retries ran out

    clock.set(datetime(2026, 3, 2, 10, 0, 1, tzinfo=UTC))
    assert (await loop.step()).started == 1  # the 10:00 occurrence succeeds (outcomes: ok)
    await service.wait_idle(within=5)
    assert alerts.seen[-1] == ("recovery", (await service.list_runs(RunFilter(task="hourly"), limit=1))[0].id)


async def test_retries_are_validated_and_shown_by_the_api(api: ApiEnv) -> None:
    async with api.admin() as client:
        created = await client.post(
            f"{B}/tasks",
            json={"name": "flaky", "handler": "nightly_cleanup", "cron": "@daily", "max_retries": 3},
        )
        assert created.status_code == 201, created.text
        assert (created.json()["max_retries"], created.json()["retry_backoff_s"]) == (3, 60)
        tid = created.json()["id"]
        bad = await client.patch(f"{B}/tasks/{tid}", json={"retry_backoff_s": 600, "retry_backoff_max_s": 60})
        assert assert_error(bad, 422)["details"][0]["field"] == "retry_backoff_max_s"
        assert_error(await client.patch(f"{B}/tasks/{tid}", json={"max_retries": 101}), 422)
        ok = await client.patch(f"{B}/tasks/{tid}", json={"retry_backoff_s": 30, "retry_backoff_max_s": 600})
        assert ok.status_code == 200 and ok.json()["retry_backoff_max_s"] == 600
        assert (await client.get(f"{B}/runs", params={"trigger": "retry"})).json()["items"] == []


async def test_what_a_run_logs_is_kept_with_it_bounded_and_shown_by_the_api(
    api: ApiEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    async def chatty(ctx: RunContext) -> dict[str, object]:
        ctx.log.info("fetching %d feeds", 3)
        logging.getLogger("mediabeat.tasks.crawl_queue").warning("robots.txt of example.test refused")
        ctx.log.debug("not kept: below INFO")
        return {}

    async def noisy(ctx: RunContext) -> dict[str, object]:
        for i in range(200):
            ctx.log.info("line %d of a long log", i)
        return {}

    api.services.registry.register("chatty", chatty)
    api.services.registry.register("noisy", noisy)
    api.services.scheduler.runner.run_logs.max_chars = 2_000
    scheduler = api.services.scheduler
    await scheduler.create_task(NewTask(name="chatty", handler="chatty", cron="@daily"))
    await scheduler.create_task(NewTask(name="noisy", handler="noisy", cron="@daily"))
    unrelated = logging.getLogger("mediabeat.web")
    run = await scheduler.run_now_and_wait("chatty", triggered_by="cli")
    unrelated.info("outside any run: not kept")
    long = await scheduler.run_now_and_wait("noisy", triggered_by="cli")
    async with api.admin() as client:
        body = (await client.get(f"{B}/runs/{run.id}/logs")).json()
        assert body["status"] == "succeeded" and len(body["lines"]) == 2
        assert body["lines"][0].endswith("INFO mediabeat.scheduler: fetching 3 feeds")
        assert "WARNING mediabeat.tasks.crawl_queue: robots.txt of example.test refused" in body["lines"][1]
        lines = (await client.get(f"{B}/runs/{long.id}/logs")).json()["lines"]
        assert sum(len(line) + 1 for line in lines[:-1]) <= 2_000
        assert re.fullmatch(r"\[\d+ more log line\(s\) cut: MEDIABEAT_RUN_LOG_MAX_CHARS is 2000\]", lines[-1])
        assert "line 0 of a long log" in lines[0]
        listed = (await client.get(f"{B}/runs", params={"task": "chatty"})).json()["items"]
        assert "log" not in listed[0]
        assert_error(await client.get(f"{B}/runs/999999/logs"), 404)
    assert logging.getLogger().handlers.count(scheduler.runner.run_logs) == 0  # removed when no run is in flight
    async with signed_in(api) as client:
        page = (await client.get(f"/app/admin/scheduler/runs/{run.id}")).text
        assert 'id="run-log"' in page and "fetching 3 feeds" in page
