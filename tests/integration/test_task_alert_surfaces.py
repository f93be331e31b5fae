"""Alert rules per task through the API, the CLI and the task page: set, read, mute, unmute, errors."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.api_fixtures import ApiEnv, assert_error
from tests.integration.test_content_services import cli, ok
from tests.integration.test_dashboard_pages import signed_in

B = "/api/v1/scheduler"


async def test_rules_are_set_read_muted_and_unmuted_through_the_api(api: ApiEnv) -> None:
    tid = (await api.services.scheduler.get_task_by_name("nightly-cleanup")).id
    until = (api.services.clock.now() + timedelta(hours=2)).isoformat()
    async with api.admin() as client:
        default = (await client.get(f"{B}/tasks/{tid}/alerts")).json()
        assert (default["after_failures"], default["late_after_s"], default["muted"], default["recent"]) == (
            1,
            None,
            False,
            [],
        )
        body = {"after_failures": 3, "late_after_s": 600, "missing": True, "slower_than_p95": 2.5, "mute_until": until}
        changed = await client.patch(f"{B}/tasks/{tid}/alerts", json=body)
        assert changed.status_code == 200, changed.text
        rules = changed.json()
        assert (rules["after_failures"], rules["late_after_s"], rules["missing"], rules["slower_than_p95"]) == (
            3,
            600,
            True,
            2.5,
        )
        assert rules["muted"] is True
        unmuted = (
            await client.patch(f"{B}/tasks/{tid}/alerts", json={"mute_until": None, "late_after_s": None})
        ).json()
        assert (unmuted["muted"], unmuted["mute_until"], unmuted["late_after_s"], unmuted["after_failures"]) == (
            False,
            None,
            None,
            3,
        )
        error = assert_error(await client.patch(f"{B}/tasks/{tid}/alerts", json={"after_failures": 0}), 422, "invalid")
        assert error["details"][0]["field"] == "alert_after_failures"
        no_mail = await client.patch(f"{B}/tasks/{tid}/alerts", json={"email": "ops@example.org"})
        assert "MEDIABEAT_SMTP_URL" in assert_error(no_mail, 422)["message"]
        assert_error(await client.get(f"{B}/tasks/999999/alerts"), 404)
    async with api.member() as client:
        assert_error(await client.get(f"{B}/tasks/{tid}/alerts"), 403)
    events = await api.auth.audit.list(action="task.alerts")
    assert len(events) == 2 and events[-1].details and events[-1].details["after_failures"] == 3


async def test_a_task_is_created_and_changed_with_its_alert_rules(api: ApiEnv) -> None:
    async with api.admin() as client:
        bad = await client.post(
            f"{B}/tasks",
            json={"name": "report", "handler": "nightly_cleanup", "cron": "@daily", "alerts": {"late_after_s": -1}},
        )
        assert assert_error(bad, 422)["details"][0]["field"] == "alert_late_s"
        assert (await client.get(f"{B}/tasks")).json()["items"][-1]["name"] != "report"  # nothing was created
        created = await client.post(
            f"{B}/tasks",
            json={"name": "report", "handler": "nightly_cleanup", "cron": "@daily", "alerts": {"late_after_s": 900}},
        )
        assert created.status_code == 201, created.text
        tid = created.json()["id"]
        patched = await client.patch(f"{B}/tasks/{tid}", json={"timeout_s": 60, "alerts": {"slower_than_s": 30}})
        assert patched.status_code == 200 and patched.json()["timeout_s"] == 60
        rules = (await client.get(f"{B}/tasks/{tid}/alerts")).json()
        assert (rules["late_after_s"], rules["slower_than_s"]) == (900, 30)


async def test_the_cli_sets_shows_mutes_and_lists_alerts(api: ApiEnv) -> None:
    printed = ok(
        await cli(
            api,
            "tasks",
            "set",
            "nightly-cleanup",
            "--alert-after-failures",
            "2",
            "--alert-late",
            "300",
            "--alert-missing",
            "--alert-slower-than",
            "120",
            "--mute-until",
            "2h",
        )
    )
    assert printed.startswith("nightly-cleanup:")
    shown = ok(await cli(api, "tasks", "show", "nightly-cleanup"))
    assert "Failure: after 2 failures in a row" in shown and "Late: a run not started 300 s" in shown
    assert "Missing: an occurrence that never ran" in shown and "muted until" in shown
    assert "nightly-cleanup: alerts on" in ok(await cli(api, "tasks", "unmute", "nightly-cleanup"))
    assert "alerts muted until" in ok(await cli(api, "tasks", "mute", "nightly-cleanup", "--for", "1d"))
    bad = await cli(api, "tasks", "set", "nightly-cleanup", "--mute-until", "next tuesday")
    assert bad.exit_code == 2 and "is not a time" in bad.stderr
    bad = await cli(api, "tasks", "set", "nightly-cleanup", "--alert-webhook", "gopher://x")
    assert bad.exit_code == 2 and "alert_webhook_url" in bad.stderr
    assert ok(await cli(api, "tasks", "alerts", "nightly-cleanup", "--json")).strip() == "[]"


async def test_the_cli_creates_a_task_with_its_alert_rules_and_a_bad_rule_creates_nothing(api: ApiEnv) -> None:
    base = ["tasks", "create", "digest", "--handler", "nightly_cleanup", "--cron", "0 6 * * *"]
    bad = await cli(api, *base, "--alert-webhook", "gopher://x")
    assert bad.exit_code == 2 and "alert_webhook_url" in bad.stderr
    bad = await cli(api, *base, "--mute-until", "next tuesday")
    assert bad.exit_code == 2 and "is not a time" in bad.stderr
    assert "digest" not in [t.name for t in await api.services.scheduler.list_tasks()]
    printed = ok(await cli(api, *base, "--alert-after-failures", "3", "--alert-late", "600", "--alert-missing"))
    assert printed.startswith("created digest:")
    shown = ok(await cli(api, "tasks", "show", "digest"))
    assert "Failure: after 3 failures in a row" in shown and "Late: a run not started 600 s" in shown
    assert "Missing: an occurrence that never ran" in shown


async def test_the_task_page_shows_the_rules_the_mute_and_a_mute_button(api: ApiEnv) -> None:
    tid = (await api.services.scheduler.get_task_by_name("nightly-cleanup")).id
    async with api.admin() as client:
        await client.patch(f"{B}/tasks/{tid}/alerts", json={"late_after_s": 600})
    async with signed_in(api) as browser:
        page = (await browser.get("/app/admin/scheduler/tasks/nightly-cleanup")).text
        assert "Late: a run not started 600 s after its due time" in page
        assert 'data-action="alerts-mute" data-seconds="3600"' in page and "No alerts yet." in page
    until = (api.services.clock.now() + timedelta(hours=1)).isoformat()
    async with api.admin() as client:
        await client.patch(f"{B}/tasks/{tid}/alerts", json={"mute_until": until})
    async with signed_in(api) as browser:
        page = (await browser.get("/app/admin/scheduler/tasks/nightly-cleanup")).text
        assert "Muted until" in page and ">Unmute<" in page
