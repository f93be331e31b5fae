"""The scheduler endpoints: toggle, run now (202, Location, wait, 409), run pages and filters, stats, edits, audit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from mediabeat.testing import BlockingHandler, FailingHandler
from mediabeat.web.api.scheduler import RunPage
from tests.integration.api_fixtures import ADMIN_EMAIL, ApiEnv, assert_error, make_env

B = "/api/v1/scheduler"


async def _task_id(api: ApiEnv, name: str = "nightly-cleanup") -> int:
    return (await api.services.scheduler.get_task_by_name(name)).id


async def test_toggle_flips_and_an_explicit_state_is_idempotent(api: ApiEnv) -> None:
    tid = await _task_id(api)
    async with api.admin() as client:
        listed = (await client.get(f"{B}/tasks")).json()["items"]
        cleanup = next(t for t in listed if t["name"] == "nightly-cleanup")
        assert cleanup["id"] == tid and cleanup["enabled"] is True and cleanup["cron_description"]
        first = (await client.post(f"{B}/tasks/{tid}/toggle")).json()
        second = (await client.post(f"{B}/tasks/{tid}/toggle")).json()
        assert (first["enabled"], second["enabled"]) == (False, True)
        for _ in range(2):
            again = await client.post(f"{B}/tasks/{tid}/toggle", json={"enabled": False})
            assert again.status_code == 200 and again.json()["enabled"] is False
    events = await api.auth.audit.list(action="task.disable")
    assert len(events) == 3 and events[0].actor == ADMIN_EMAIL and events[0].ip == "127.0.0.1"
    assert events[0].target_id == str(tid) and events[0].details and events[0].details["via"] == "token"


async def test_run_now_answers_202_with_location_and_wait_returns_the_finished_run(api: ApiEnv) -> None:
    async with api.admin() as client:
        started = await client.post(f"{B}/tasks/nightly-cleanup/run")
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        assert started.headers["location"] == f"{B}/runs/{run_id}"
        assert started.json()["triggered_by"] == ADMIN_EMAIL and started.json()["trigger"] == "manual"
        await api.services.scheduler.wait_idle()
        detail = (await client.get(started.headers["location"])).json()
        assert detail["status"] == "succeeded" and "traceback" in detail
        waited = await client.post(f"{B}/tasks/nightly-cleanup/run", params={"wait": "true"})
        assert waited.status_code == 200 and waited.json()["status"] == "succeeded"
    runs = await api.auth.audit.list(action="task.run")
    assert {e.details["run_id"] for e in runs if e.details} == {run_id, waited.json()["id"]}


async def test_run_now_is_409_while_overlap_forbids(api: ApiEnv) -> None:
    blocking = BlockingHandler()
    api.services.registry.register("blocking", blocking)
    async with api.admin() as client:
        created = await client.post(f"{B}/tasks", json={"name": "slow-one", "handler": "blocking", "cron": "@daily"})
        assert created.status_code == 201, created.text
        assert created.headers["location"] == f"{B}/tasks/{created.json()['id']}"
        first = await client.post(f"{B}/tasks/slow-one/run")
        assert first.status_code == 202
        await blocking.started.wait()
        second = await client.post(f"{B}/tasks/slow-one/run")
        error = assert_error(second, 409, "already_running")
        assert error["details"]["running_run_id"] == first.json()["id"]
        busy_delete = await client.delete(f"{B}/tasks/{created.json()['id']}")
        assert_error(busy_delete, 409, "task_running")
        blocking.release()
        await api.services.scheduler.wait_idle()
        assert (await client.delete(f"{B}/tasks/{created.json()['id']}")).status_code == 204
        assert_error(await client.get(f"{B}/tasks/{created.json()['id']}"), 404)


async def test_a_server_without_the_loop_heartbeats_the_runs_it_starts(database_url: str) -> None:
    """ENABLE_SCHEDULER off: no loop beats for a run started through the API, so the service does."""
    env = await make_env(database_url, heartbeat_seconds=0.1)
    blocking = BlockingHandler()
    env.services.registry.register("blocking", blocking)
    async with env.app.router.lifespan_context(env.app), env.admin() as client:
        await client.post(f"{B}/tasks", json={"name": "slow-one", "handler": "blocking", "cron": "@daily"})
        run_id = (await client.post(f"{B}/tasks/slow-one/run")).json()["id"]
        await blocking.started.wait()
        beats = set()
        async with asyncio.timeout(10):
            while len(beats) < 3:
                run = await env.services.scheduler.get_run(run_id)
                assert run is not None and run.status == "running"
                beats.add(run.heartbeat_at)
                await asyncio.sleep(0.05)
        blocking.release()
        await env.services.scheduler.wait_idle()
        run = await env.services.scheduler.get_run(run_id)
        assert run is not None and run.status == "succeeded"


async def test_runs_filters_and_cursor_pages(api: ApiEnv) -> None:
    api.services.registry.register("failing", FailingHandler())
    async with api.admin() as client:
        await client.post(f"{B}/tasks", json={"name": "flaky", "handler": "failing", "cron": "@hourly"})
        for _ in range(3):
            assert (await client.post(f"{B}/tasks/nightly-cleanup/run?wait=true")).status_code == 200
            assert (await client.post(f"{B}/tasks/flaky/run?wait=true")).status_code == 200
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get(f"{B}/runs", params=params)).json()
            seen.extend(r["id"] for r in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == 6 and seen == sorted(seen, reverse=True)
        failed = (await client.get(f"{B}/runs", params={"status": "failed"})).json()["items"]
        assert len(failed) == 3 and {r["task"] for r in failed} == {"flaky"}
        assert all("exploded" in r["error"] for r in failed)
        by_task = (await client.get(f"{B}/runs", params={"task": "nightly-cleanup", "trigger": "manual"})).json()
        assert len(by_task["items"]) == 3
        future = (await client.get(f"{B}/runs", params={"since": "2999-01-01T00:00:00"})).json()
        assert future["items"] == []
        until = (await client.get(f"{B}/runs", params={"until": "2999-01-01T00:00:00+02:00"})).json()
        assert len(until["items"]) == 6
        stats = (await client.get(f"{B}/stats")).json()
        tasks = (await client.get(f"{B}/tasks")).json()["items"]
        assert stats["total_tasks"] == len(tasks)
        assert (stats["total_runs"], stats["failed_runs"], stats["succeeded_runs"]) == (6, 3, 3)
        detail = (await client.get(f"{B}/runs/{failed[0]['id']}")).json()
        assert "RuntimeError" in detail["traceback"]
        # The listing is serialised without a model per row: it still is exactly the documented
        # RunPage, and each item is the run's detail without the traceback.
        listing = (await client.get(f"{B}/runs", params={"status": "failed"})).json()
        assert RunPage.model_validate(listing).model_dump(mode="json") == listing
        assert listing["items"][0] == {k: v for k, v in detail.items() if k != "traceback"}


async def test_patch_validates_with_the_cli_messages_and_upcoming_follows(api: ApiEnv) -> None:
    tid = await _task_id(api)
    async with api.admin() as client:
        bad = await client.patch(f"{B}/tasks/{tid}", json={"cron": "61 * * * *"})
        error = assert_error(bad, 422, "invalid")
        assert error["details"][0]["field"] == "cron" and "61" in error["message"]
        zone = assert_error(await client.patch(f"{B}/tasks/{tid}", json={"timezone": "Mars/Base"}), 422)
        assert zone["details"][0]["field"] == "timezone"
        timeout = assert_error(await client.patch(f"{B}/tasks/{tid}", json={"timeout_s": 0}), 422)
        assert "between 1 and" in timeout["message"]
        ok = await client.patch(f"{B}/tasks/{tid}", json={"cron": "30 2 * * *", "timezone": "Europe/Berlin"})
        assert ok.status_code == 200 and ok.json()["cron"] == "30 2 * * *"
        upcoming = (await client.get(f"{B}/tasks/{tid}/upcoming", params={"count": 3})).json()
        assert len(upcoming["times"]) == 3 and all("T02:30:00" in t for t in upcoming["times"])
        handlers = (await client.get(f"{B}/handlers")).json()["items"]
        assert "nightly_cleanup" in handlers
    updates = await api.auth.audit.list(action="task.update")
    assert len(updates) == 1 and updates[0].details and updates[0].details["cron"] == "30 2 * * *"


async def test_cron_preview_explains_a_schedule_and_names_the_bad_field(api: ApiEnv) -> None:
    async with api.admin() as client:
        ok = await client.get(f"{B}/cron/preview", params={"cron": " 30  2 * * 1-5", "timezone": "Europe/Berlin"})
        assert ok.status_code == 200, ok.text
        preview = ok.json()
        assert preview["cron"] == "30 2 * * 1-5" and preview["timezone"] == "Europe/Berlin"
        assert preview["description"] == "At 02:30, Monday through Friday"
        times = [datetime.fromisoformat(t) for t in preview["times"]]
        assert len(times) == 5 and times == sorted(times) and times[0] > datetime.now(UTC)
        assert all((t.hour, t.minute, t.isoweekday() <= 5) == (2, 30, True) for t in times)
        assert all(t.utcoffset() in (timedelta(hours=1), timedelta(hours=2)) for t in times)
        alias = (await client.get(f"{B}/cron/preview", params={"cron": "@hourly", "count": 2})).json()
        assert alias["description"] == "Every hour" and len(alias["times"]) == 2
        bad_cron = assert_error(await client.get(f"{B}/cron/preview", params={"cron": "61 * * * *"}), 422, "invalid")
        message = (
            "invalid cron expression '61 * * * *': bad minute '61': "
            "the minute field takes 0-59, and ranges, lists and steps of them"
        )
        assert bad_cron["details"] == [{"field": "cron", "message": message}]
        bad_zone = await client.get(f"{B}/cron/preview", params={"cron": "61 * * * *", "timezone": "Mars/Base"})
        assert assert_error(bad_zone, 422)["details"][0]["field"] == "timezone"
        assert_error(await client.get(f"{B}/cron/preview", params={"cron": "* * * * *", "count": 101}), 422)
        assert_error(await client.get(f"{B}/cron/preview"), 422)


async def test_cookie_mutations_need_the_csrf_token(api: ApiEnv) -> None:
    from tests.integration.api_fixtures import ADMIN_PASSWORD

    tid = await _task_id(api)
    async with api.client() as client:
        login = await client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        csrf = login.json()["csrf_token"]
        assert (await client.get(f"{B}/tasks")).status_code == 200  # reads need no token
        assert_error(await client.post(f"{B}/tasks/{tid}/toggle"), 403, "csrf_failed")
        assert_error(await client.post(f"{B}/tasks/{tid}/toggle", headers={"X-CSRF-Token": "forged"}), 403)
        assert (await api.services.scheduler.get_task(tid)).enabled is True
        ok = await client.post(f"{B}/tasks/{tid}/toggle", headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200 and ok.json()["enabled"] is False
    events = await api.auth.audit.list(action="task.disable")
    assert events[0].details and events[0].details["via"] == "session"


async def test_wait_survives_a_client_that_goes_away(api: ApiEnv) -> None:
    """A cancelled ?wait=true request leaves the run to finish and be recorded."""
    blocking = BlockingHandler()
    api.services.registry.register("blocking", blocking)
    async with api.admin() as client:
        await client.post(f"{B}/tasks", json={"name": "slow-two", "handler": "blocking", "cron": "@daily"})
        request = asyncio.create_task(client.post(f"{B}/tasks/slow-two/run?wait=true"))
        await blocking.started.wait()
        request.cancel()
        blocking.release()
        await api.services.scheduler.wait_idle()
        runs = (await client.get(f"{B}/runs", params={"task": "slow-two"})).json()["items"]
    assert [r["status"] for r in runs] == ["succeeded"]
