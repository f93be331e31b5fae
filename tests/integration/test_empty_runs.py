"""A quieter history: scheduled runs that find nothing to do are counted on their task, not kept as rows.

Through the public doors: the scheduled path runs the real crawl-queue and hourly-rss-fetch
handlers on an empty database, `mediabeat runs list` (in-process) lists the runs, and the
HTTP API gives the statistics and the task.
"""

from __future__ import annotations

import json
from typing import Any

from mediabeat.db.stores.scheduler import SchedulerStore
from tests.integration.api_fixtures import ApiEnv, make_env
from tests.integration.test_content_services import cli, ok


async def _run_due(api: ApiEnv) -> None:
    """One scheduled pass: the seeded tasks have never run, so all of them are due now."""
    scheduler = api.services.scheduler
    await scheduler.prepare_schedules()
    assert await scheduler.execute_due_tasks() >= 2
    await scheduler.wait_idle(within=60)


async def _listed(api: ApiEnv, task: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = json.loads(ok(await cli(api, "runs", "list", "--task", task, "--json")))
    return runs


async def _stats(api: ApiEnv) -> dict[str, Any]:
    async with api.admin() as client:
        response = await client.get("/api/v1/scheduler/stats")
    assert response.status_code == 200, response.text
    stats: dict[str, Any] = response.json()
    return stats


async def test_empty_scheduled_runs_are_counted_not_listed_and_never_run_twice(api: ApiEnv) -> None:
    await _run_due(api)
    # crawl-queue found the queue empty, hourly-rss-fetch found no feed due: no rows...
    assert await _listed(api, "crawl-queue") == []
    assert await _listed(api, "hourly-rss-fetch") == []
    # ...but counted: on the task, in the totals and in the last 24 hours.
    stats = await _stats(api)
    per_task = {t["name"]: t for t in stats["tasks"]}
    crawl = per_task["crawl-queue"]
    assert (crawl["runs"], crawl["empty_runs"], crawl["empty_runs_24h"]) == (1, 1, 1)
    assert crawl["last_empty_run_at"] is not None
    assert stats["empty_runs"] >= 2 and stats["total_runs"] >= stats["empty_runs"]
    assert stats["runs_last_24h"] >= 2
    async with api.admin() as client:
        tasks = {t["name"]: t for t in (await client.get("/api/v1/scheduler/tasks")).json()["items"]}
    assert tasks["crawl-queue"]["last_status"] == "skipped"
    assert tasks["crawl-queue"]["last_empty_run_at"] == crawl["last_empty_run_at"]

    # The row that would have refused a second claim of the occurrence is gone: the task's marker
    # of the latest claimed occurrence refuses it instead. Put the due time back on that occurrence,
    # as a node with a stale view could: the claim takes the task but starts nothing.
    store = SchedulerStore(api.services.db)
    task = await store.get_task_by_name("crawl-queue")
    assert task is not None and task.last_scheduled_for is not None
    await store.update_task(task.id, {"next_run_at": task.last_scheduled_for}, task.updated_at)
    await api.services.scheduler.execute_due_tasks()
    await api.services.scheduler.wait_idle(within=60)
    again = {t["name"]: t for t in (await _stats(api))["tasks"]}["crawl-queue"]
    assert (again["runs"], again["empty_runs"]) == (1, 1)
    assert await _listed(api, "crawl-queue") == []


async def test_a_task_can_keep_its_empty_runs(api: ApiEnv) -> None:
    printed = ok(await cli(api, "tasks", "set", "crawl-queue", "--keep-empty-runs", "--priority", "5"))
    assert "crawl-queue" in printed
    await _run_due(api)
    kept = await _listed(api, "crawl-queue")
    assert [(r["status"], r["trigger"], r["error"]) for r in kept] == [("skipped", "schedule", "skipped: queue empty")]
    assert await _listed(api, "hourly-rss-fetch") == []  # the other task still only counts them
    async with api.admin() as client:
        task = (await client.get("/api/v1/scheduler/tasks")).json()["items"]
        crawl = next(t for t in task if t["name"] == "crawl-queue")
        assert (crawl["keep_empty_runs"], crawl["priority"]) == (True, 5)
        refused = await client.patch(f"/api/v1/scheduler/tasks/{crawl['id']}", json={"priority": 1001})
        assert refused.status_code == 422, refused.text
        back = await client.patch(f"/api/v1/scheduler/tasks/{crawl['id']}", json={"keep_empty_runs": False})
        assert back.status_code == 200 and back.json()["keep_empty_runs"] is False


async def test_the_operator_can_keep_every_empty_run(database_url: str) -> None:
    env = await make_env(database_url, keep_empty_runs=True)
    try:
        await _run_due(env)
        for task in ("crawl-queue", "hourly-rss-fetch"):
            runs = await _listed(env, task)
            assert [r["status"] for r in runs] == ["skipped"], task
        assert (await _stats(env))["empty_runs"] == 0
    finally:
        await env.services.close()


async def test_a_run_started_by_hand_that_finds_nothing_is_kept(api: ApiEnv) -> None:
    run = await api.services.scheduler.run_now_and_wait("crawl-queue")
    assert (run.status, run.error) == ("skipped", "skipped: queue empty")
    assert [r["id"] for r in await _listed(api, "crawl-queue")] == [run.id]
