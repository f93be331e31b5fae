"""The alert rules' pure decisions, with the time passed in: after N failures, late, missing, slow, and the checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mediabeat.domain.scheduler import (
    MisfirePolicy,
    OverlapPolicy,
    RunRecord,
    RunStatus,
    TaskRecord,
    TaskValidationError,
)
from mediabeat.domain.task_alerts import AlertKind, AlertRuleChanges, AlertRules, apply_rule_changes, parse_mute_until
from mediabeat.schedule import parse_schedule
from mediabeat.scheduler.alert_rules import (
    SentAlerts,
    alerts_due,
    failure_streak,
    percentile,
    run_alert,
    slow_limit_s,
    streak_key,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, on the hour
HOURLY = parse_schedule("0 * * * *")


def task(**values: object) -> TaskRecord:
    defaults: dict[str, object] = {
        "id": 1,
        "name": "fetch",
        "description": "",
        "handler": "fetch",
        "cron": "0 * * * *",
        "timezone": "UTC",
        "enabled": True,
        "misfire_policy": MisfirePolicy.RUN_ONCE,
        "overlap_policy": OverlapPolicy.FORBID,
        "timeout_s": 3600,
        "params": None,
        "last_run_at": None,
        "last_status": None,
        "next_run_at": T0 + timedelta(hours=1),
        "created_at": T0 - timedelta(days=30),
        "updated_at": T0 - timedelta(days=30),
    }
    return TaskRecord(**{**defaults, **values})  # type: ignore[arg-type]


def run(
    run_id: int, status: str = "succeeded", *, at: datetime = T0, ms: int | None = 1000, **values: object
) -> RunRecord:
    defaults: dict[str, object] = {
        "id": run_id,
        "task_id": 1,
        "task": "fetch",
        "trigger": "schedule",
        "scheduled_for": at,
        "started_at": at,
        "finished_at": None if status == "running" else at + timedelta(milliseconds=ms or 0),
        "duration_ms": None if status == "running" else ms,
        "status": RunStatus(status),
        "error": None,
        "traceback": None,
        "result": None,
        "missed": 0,
        "node_id": "n",
        "heartbeat_at": at,
        "triggered_by": None,
    }
    return RunRecord(**{**defaults, **values})  # type: ignore[arg-type]


RULES = AlertRules(task_id=1, updated_at=T0 - timedelta(days=10))


# -- failures in a row ------------------------------------------------------------------


def test_a_streak_counts_occurrences_and_skipped_or_cancelled_runs_do_not_break_it() -> None:
    history = [run(5, "failed"), run(4, "skipped"), run(3, "failed"), run(2, "cancelled"), run(1, "succeeded")]
    assert failure_streak(history) == 2
    # Run 7 retries 6: the occurrence failed once, through its last attempt.
    retried = [run(7, "failed", retry_of=6, trigger="retry"), run(6, "failed"), run(5, "succeeded")]
    assert failure_streak(retried) == 1


def test_runs_of_one_streak_share_its_alert_key_and_the_next_streak_has_its_own() -> None:
    # Runs 3 and 4 failed at once (overlap allow): each sees the streak, both name the same key.
    assert streak_key([run(3, "failed"), run(2, "skipped"), run(1, "succeeded")]) == "streak-after:1"
    assert streak_key([run(4, "failed"), run(3, "failed"), run(1, "succeeded")]) == "streak-after:1"
    assert streak_key([run(6, "failed"), run(5, "succeeded"), run(4, "failed")]) == "streak-after:5"
    assert streak_key([run(2, "failed"), run(1, "failed")]) == "streak-from:1"


def test_the_failure_alert_waits_for_n_in_a_row_and_a_recovery_follows_only_a_failure_alert() -> None:
    rules = replace(RULES, after_failures=3)
    two = [run(2, "failed"), run(1, "failed")]
    three = [run(3, "failed"), *two]
    assert run_alert(two[0], two, rules, SentAlerts()) is None
    assert run_alert(three[0], three, rules, SentAlerts()) is AlertKind.FAILURE
    assert run_alert(run(4, "failed"), [run(4, "failed"), *three], rules, SentAlerts(open_failure=True)) is None
    assert run_alert(run(5), [], rules, SentAlerts(open_failure=True)) is AlertKind.RECOVERY
    assert run_alert(run(5), [], rules, SentAlerts()) is None  # two failures, no alert: no recovery either
    assert run_alert(run(1, "failed"), [run(1, "failed")], RULES, SentAlerts()) is AlertKind.FAILURE  # default 1


# -- late -------------------------------------------------------------------------------


def test_late_fires_after_the_grace_once_per_spell_and_not_when_the_run_started() -> None:
    rules = replace(RULES, late_after_s=300)
    earlier = [run(1, at=T0 - timedelta(hours=1))]
    due = task(next_run_at=T0)  # the scheduler has not claimed 09:00 yet
    assert alerts_due(due, HOURLY, rules, earlier, T0 + timedelta(seconds=299), sent=SentAlerts()) == []
    [late] = alerts_due(due, HOURLY, rules, earlier, T0 + timedelta(seconds=300), sent=SentAlerts())
    assert (late.kind, late.occurrence, late.key) == (AlertKind.LATE, T0, T0.isoformat())
    assert "has not started" in late.summary
    # Told once: an hour on, 10:00 is late too, but it is the same spell (no run started since).
    later = task(next_run_at=T0)
    assert alerts_due(later, HOURLY, rules, earlier, T0 + timedelta(minutes=70), sent=SentAlerts(last_late=T0)) == []
    # A run that started within the grace means it was not late.
    on_time = [run(2, at=T0 + timedelta(seconds=30), scheduled_for=T0), *earlier]
    assert alerts_due(task(), HOURLY, rules, on_time, T0 + timedelta(minutes=10), sent=SentAlerts()) == []


def test_nothing_is_late_for_a_disabled_task_or_before_the_rules_or_the_last_resume() -> None:
    rules = replace(RULES, late_after_s=60)
    now = T0 + timedelta(minutes=5)
    assert alerts_due(task(enabled=False, next_run_at=T0), HOURLY, rules, [], now, sent=SentAlerts()) == []
    fresh = replace(rules, updated_at=T0 + timedelta(minutes=1))
    assert alerts_due(task(next_run_at=T0), HOURLY, fresh, [], now, sent=SentAlerts()) == []
    resumed = T0 + timedelta(minutes=2)
    assert alerts_due(task(next_run_at=T0), HOURLY, rules, [], now, sent=SentAlerts(), quiet_before=resumed) == []


# -- missing ----------------------------------------------------------------------------


def test_missing_groups_the_occurrences_the_scheduler_passed_and_reports_each_once() -> None:
    rules = replace(RULES, missing=True, updated_at=T0 - timedelta(minutes=90))
    # Node down from 08:59 to 11:30; run_once ran 11:00 once; 09:00 and 10:00 never ran.
    runs = [
        run(3, at=T0 + timedelta(hours=2, minutes=30), scheduled_for=T0 + timedelta(hours=2)),
        run(1, at=T0 - timedelta(hours=1)),
    ]
    now = T0 + timedelta(hours=2, minutes=31)
    passed = task(next_run_at=T0 + timedelta(hours=3))
    [missing] = alerts_due(passed, HOURLY, rules, runs, now, sent=SentAlerts())
    assert missing.kind is AlertKind.MISSING and missing.facts["missed"] == 2
    assert (missing.facts["first"], missing.occurrence) == (T0.isoformat(), T0 + timedelta(hours=1))
    assert alerts_due(passed, HOURLY, rules, runs, now, sent=SentAlerts(last_missing=missing.occurrence)) == []
    # A skipped run (overlap forbidden) did not run its occurrence.
    skipped = [run(4, "skipped", at=T0 + timedelta(hours=3)), *runs]
    later = task(next_run_at=T0 + timedelta(hours=4))
    sent = SentAlerts(last_missing=missing.occurrence)
    [again] = alerts_due(later, HOURLY, rules, skipped, now + timedelta(hours=1), sent=sent)
    assert again.facts["missed"] == 1 and again.occurrence == T0 + timedelta(hours=3)


def test_an_occurrence_the_scheduler_has_not_reached_is_not_missing() -> None:
    rules = replace(RULES, missing=True, updated_at=T0 - timedelta(minutes=30))
    waiting = task(next_run_at=T0)  # 09:00 not claimed yet (late perhaps, not missing)
    assert alerts_due(waiting, HOURLY, rules, [], T0 + timedelta(minutes=20), sent=SentAlerts()) == []


# -- slow -------------------------------------------------------------------------------


def test_slow_by_seconds_while_running_and_by_k_times_the_p95_of_earlier_successes() -> None:
    rules = replace(RULES, slower_than_s=60)
    running = [run(9, "running", at=T0)]
    assert alerts_due(task(), HOURLY, rules, running, T0 + timedelta(seconds=60), sent=SentAlerts()) == []
    [slow] = alerts_due(task(), HOURLY, rules, running, T0 + timedelta(seconds=61), sent=SentAlerts())
    assert (slow.kind, slow.key, slow.facts["limit_s"]) == (AlertKind.SLOW, "run:9", 60.0)
    assert (
        alerts_due(
            task(), HOURLY, rules, running, T0 + timedelta(hours=1), sent=SentAlerts(slow_run_ids=frozenset({9}))
        )
        == []
    )

    by_p95 = replace(RULES, slower_than_p95=3)
    history = [run(i, ms=1000 + 10 * i, at=T0 - timedelta(hours=10 - i)) for i in range(1, 9)]
    assert slow_limit_s(by_p95, history) == pytest.approx(3 * 1.08)
    assert slow_limit_s(by_p95, history[:4]) is None  # too few runs to know what normal is
    finished = [run(20, ms=3300, at=T0), *reversed(history)]
    [found] = alerts_due(task(), HOURLY, by_p95, finished, T0 + timedelta(minutes=1), sent=SentAlerts())
    assert found.run is not None and found.run.id == 20 and "took 3 s" in found.summary
    assert percentile([1, 2, 3, 4], 0.5) == 2 and percentile([], 0.95) is None


# -- checking a change ----------------------------------------------------------------------


def test_changes_are_checked_with_a_message_that_names_the_field() -> None:
    now = T0
    changed = apply_rule_changes(RULES, AlertRuleChanges(after_failures=3, late_after_s=120, missing=True), now=now)
    assert (changed.after_failures, changed.late_after_s, changed.missing, changed.updated_at) == (3, 120, True, now)
    assert apply_rule_changes(changed, AlertRuleChanges(late_after_s=0), now=now).late_after_s is None
    for changes, field in [
        (AlertRuleChanges(after_failures=0), "alert_after_failures"),
        (AlertRuleChanges(slower_than_p95=0.5), "alert_slower_than_p95"),
        (AlertRuleChanges(webhook_url="ftp://example.org/x"), "alert_webhook_url"),
        (AlertRuleChanges(email="not an address"), "alert_email"),
        (AlertRuleChanges(mute_until=now - timedelta(seconds=1)), "mute_until"),
    ]:
        with pytest.raises(TaskValidationError) as caught:
            apply_rule_changes(RULES, changes, now=now)
        assert caught.value.field == field


def test_mute_until_reads_durations_times_and_off() -> None:
    assert parse_mute_until("2h", T0) == (T0 + timedelta(hours=2), False)
    assert parse_mute_until("2026-03-03T08:00", T0) == (datetime(2026, 3, 3, 8, 0, tzinfo=UTC), False)
    assert parse_mute_until("off", T0) == (None, True)
    with pytest.raises(TaskValidationError, match="is not a time"):
        parse_mute_until("next tuesday", T0)
    muted = apply_rule_changes(RULES, AlertRuleChanges(mute_until=T0 + timedelta(hours=1)), now=T0)
    assert muted.muted(T0) and not muted.muted(T0 + timedelta(hours=1))
    assert muted.updated_at == RULES.updated_at  # a mute does not restart what late, missing and slow look at
    assert apply_rule_changes(muted, AlertRuleChanges(unmute=True), now=T0).mute_until is None
