"""Misfire and overlap decisions, as pure functions of the time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mediabeat.schedule import MisfirePolicy, OverlapPolicy, initial_next_run, overlap_allows, parse_schedule, plan_due
from mediabeat.schedule.policy import MISSED_COUNT_LIMIT, plan_given_back

HOURLY = parse_schedule("0 * * * *")
GRACE = timedelta(seconds=60)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 6, 1, hour, minute, second, tzinfo=UTC)


def plan(next_run: datetime, now: datetime, policy: MisfirePolicy, max_catch_up: int = 5):  # type: ignore[no-untyped-def]
    return plan_due(HOURLY, next_run_at=next_run, now=now, misfire=policy, grace=GRACE, max_catch_up=max_catch_up)


def test_not_yet_due_keeps_next_run() -> None:
    decision = plan(at(10), at(9, 59), MisfirePolicy.RUN_ONCE)
    assert decision.run == [] and decision.next_run_at == at(10)


def test_on_time_occurrence_runs_and_next_is_the_following_hour() -> None:
    decision = plan(at(10), at(10, 0, 1), MisfirePolicy.SKIP)
    assert decision.run == [at(10)] and decision.missed == 0 and decision.next_run_at == at(11)


def test_run_once_after_downtime_runs_the_newest_and_counts_the_rest() -> None:
    decision = plan(at(3), at(8, 30), MisfirePolicy.RUN_ONCE)
    assert decision.run == [at(8)] and decision.missed == 5 and decision.missed_latest == at(7)
    assert decision.next_run_at == at(9)


def test_skip_after_downtime_runs_nothing_late() -> None:
    decision = plan(at(3), at(8, 30), MisfirePolicy.SKIP)
    assert decision.run == [] and decision.missed == 6 and decision.missed_latest == at(8)


def test_skip_still_runs_an_occurrence_within_grace() -> None:
    decision = plan(at(6), at(8, 0, 30), MisfirePolicy.SKIP)
    assert decision.run == [at(8)] and decision.missed == 2


def test_catch_up_is_bounded() -> None:
    decision = plan(at(1), at(8, 30), MisfirePolicy.CATCH_UP, max_catch_up=3)
    assert decision.run == [at(6), at(7), at(8)] and decision.missed == 5


def test_never_run_task_is_due_at_its_last_occurrence() -> None:
    assert initial_next_run(HOURLY, at(9, 41), never_ran=True) == at(9)
    assert initial_next_run(HOURLY, at(9, 41), never_ran=False) == at(10)


def test_overlap() -> None:
    assert overlap_allows(OverlapPolicy.FORBID, 0)
    assert not overlap_allows(OverlapPolicy.FORBID, 1)
    assert overlap_allows(OverlapPolicy.ALLOW, 3)


def test_past_the_count_limit_the_newest_occurrences_are_the_ones_kept() -> None:
    """A per-minute task down for eight days: 11,521 occurrences passed, more than are counted."""
    every_minute = parse_schedule("* * * * *")
    down_since, now = at(0) - timedelta(days=8), at(9, 41, 30)
    assert (now - down_since) // timedelta(minutes=1) + 1 > MISSED_COUNT_LIMIT

    def decide(policy: MisfirePolicy):  # type: ignore[no-untyped-def]
        return plan_due(every_minute, next_run_at=down_since, now=now, misfire=policy, grace=GRACE, max_catch_up=3)

    once = decide(MisfirePolicy.RUN_ONCE)
    assert once.run == [at(9, 41)] and once.missed_latest == at(9, 40)
    assert once.missed == MISSED_COUNT_LIMIT - 1  # counting stops at the limit
    caught_up = decide(MisfirePolicy.CATCH_UP)
    assert caught_up.run == [at(9, 39), at(9, 40), at(9, 41)] and caught_up.missed_latest == at(9, 38)
    skipped = decide(MisfirePolicy.SKIP)
    assert skipped.run == [at(9, 41)] and skipped.missed_latest == at(9, 40)  # the one within the grace still runs
    assert once.next_run_at == caught_up.next_run_at == skipped.next_run_at == at(9, 42)


def test_given_back_occurrences_run_within_the_grace_and_follow_the_misfire_policy_after_it() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    grace = timedelta(seconds=60)
    fresh, old, older = now - timedelta(seconds=30), now - timedelta(minutes=5), now - timedelta(minutes=65)
    assert plan_given_back([fresh], now=now, misfire=MisfirePolicy.SKIP, grace=grace) == ([fresh], [])
    assert plan_given_back([old, older], now=now, misfire=MisfirePolicy.SKIP, grace=grace) == ([], [older, old])
    assert plan_given_back([old, fresh], now=now, misfire=MisfirePolicy.SKIP, grace=grace) == ([fresh], [old])
    assert plan_given_back([old, older], now=now, misfire=MisfirePolicy.RUN_ONCE, grace=grace) == ([old], [older])
    assert plan_given_back([old, older], now=now, misfire=MisfirePolicy.CATCH_UP, grace=grace) == ([older, old], [])
