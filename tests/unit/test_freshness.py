"""The per-feed interval maths (src/mediabeat/schedule/freshness.py): pure, so every rule is checked directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mediabeat.schedule.freshness import (
    HOUR_S,
    WEEK_S,
    FeedPolicy,
    FreshnessConfig,
    Interval,
    PollResult,
    after_failure,
    after_success,
    entries_in_last_week,
    entries_per_week,
    entry_frequency_s,
    expires_in_s,
    human_interval,
    max_age_s,
    server_floor,
    ttl_s,
    while_pushed,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ADAPTIVE = FreshnessConfig()
HOURLY = FreshnessConfig(policy=FeedPolicy.HOURLY)


def poll(**kwargs: object) -> PollResult:
    values: dict[str, object] = {"previous_interval_s": None, "entries_last_week": None}
    values.update(kwargs)
    return PollResult(**values)  # type: ignore[arg-type]


def test_miniflux_entry_frequency_is_a_week_over_the_week_entries_clamped() -> None:
    assert entry_frequency_s(7, config=ADAPTIVE) == 86400
    assert entry_frequency_s(168, config=ADAPTIVE) == 3600
    assert entry_frequency_s(100_000, config=ADAPTIVE) == 300  # the 5 min floor
    assert entry_frequency_s(1, config=ADAPTIVE) == 86400  # the 24 h ceiling
    assert entry_frequency_s(0, config=ADAPTIVE) == 86400


def test_the_publishing_rate_sets_the_interval_with_polls_per_entry() -> None:
    hourly_feed = after_success(poll(entries_last_week=168, dated_entries=20), ADAPTIVE)
    assert hourly_feed.seconds == 600  # published hourly, polled 6 times an hour
    assert hourly_feed.reason == "publishing rate: 168 entries in the last week"
    busy = after_success(poll(entries_last_week=5000, dated_entries=50), ADAPTIVE)
    assert busy.seconds == 300 and "raised to the 5 min minimum" in busy.reason
    quiet = after_success(poll(entries_last_week=1, dated_entries=3), ADAPTIVE)
    assert quiet.seconds == 86400 and "capped at the 1 d maximum" in quiet.reason
    silent = after_success(poll(entries_last_week=0, dated_entries=3), ADAPTIVE)
    assert silent.seconds == 86400 and "no entry in the last week" in silent.reason


def test_a_first_fetch_without_dates_starts_at_an_hour() -> None:
    first = after_success(poll(links=10, new_links=10), ADAPTIVE)
    assert (first.seconds, first.reason) == (HOUR_S, "first fetch, entries undated")


def test_low_overlap_halves_the_interval_high_overlap_without_dates_doubles_it() -> None:
    missed = after_success(poll(previous_interval_s=7200, links=30, new_links=25), ADAPTIVE)
    assert missed.seconds == 3600 and "only 5 of 30 links seen before" in missed.reason
    # Low overlap wins over a slower publishing rate: items may have fallen off the feed.
    missed_dated = after_success(
        poll(previous_interval_s=7200, links=30, new_links=25, entries_last_week=7, dated_entries=30), ADAPTIVE
    )
    assert missed_dated.seconds == 3600
    calm = after_success(poll(previous_interval_s=3600, links=30, new_links=2), ADAPTIVE)
    assert calm.seconds == 7200 and "28 of 30 links seen before, polling less often" in calm.reason
    middle = after_success(poll(previous_interval_s=3600, links=30, new_links=15), ADAPTIVE)
    assert middle.seconds == 3600 and "kept" in middle.reason
    # With dates, high overlap does not lengthen past the rate (a short feed of a busy site stays fresh).
    dated = after_success(
        poll(previous_interval_s=600, links=30, new_links=1, entries_last_week=168, dated_entries=30), ADAPTIVE
    )
    assert dated.seconds == 600


def test_an_unchanged_body_counts_as_full_overlap() -> None:
    same = after_success(poll(previous_interval_s=1800, unchanged=True), ADAPTIVE)
    assert same.seconds == 3600 and same.reason.startswith("feed unchanged")
    capped = after_success(poll(previous_interval_s=80_000, unchanged=True), ADAPTIVE)
    assert capped.seconds == 86400


def test_the_server_can_lengthen_the_interval_up_to_the_maximum() -> None:
    ttl = after_success(
        poll(entries_last_week=168, dated_entries=9, server_floor_s=3600, server_floor_why="RSS ttl 60 min"), ADAPTIVE
    )
    assert (ttl.seconds, ttl.reason) == (3600, "the server asks for RSS ttl 60 min")
    huge = after_success(poll(entries_last_week=168, dated_entries=9, server_floor_s=10 * 86400), ADAPTIVE)
    assert huge.seconds == 86400
    shorter = after_success(poll(entries_last_week=7, dated_entries=9, server_floor_s=60), ADAPTIVE)
    assert shorter.seconds == 14400 and "server" not in shorter.reason  # daily: polled every 4 h


def test_the_hourly_policy_is_the_fixed_schedule() -> None:
    assert after_success(poll(entries_last_week=5000, dated_entries=9), HOURLY).seconds == HOUR_S
    assert after_success(poll(entries_last_week=5000), HOURLY).reason == "fixed hourly policy"
    assert [after_failure(n, HOURLY).seconds for n in (1, 2, 3, 4)] == [3600, 3600, 7200, 14400]


def test_failures_back_off_then_the_feed_turns_dormant() -> None:
    steps = [after_failure(n, ADAPTIVE) for n in range(1, 12)]
    assert [s.seconds for s in steps[:5]] == [300, 600, 1200, 2400, 4800]
    assert all(not s.dormant for s in steps[:9])
    assert steps[8].seconds == 76800
    assert after_failure(10, FreshnessConfig(dormant_after=20)).seconds == 86400  # capped at the maximum
    assert steps[9].dormant and steps[9].seconds == 30 * 86400
    assert steps[9].reason == "dormant after 10 failures in a row, polled every 30 d"
    assert after_failure(2, ADAPTIVE, error="HTTP 500").reason == "backoff after 2 failures in a row: HTTP 500"


def test_retry_after_is_a_floor_on_the_backoff() -> None:
    wait = after_failure(1, ADAPTIVE, retry_after_s=7200)
    assert wait.seconds == 7200 and "Retry-After 2.0 h" not in wait.reason and "Retry-After 2 h" in wait.reason
    assert after_failure(1, ADAPTIVE, retry_after_s=60).seconds == 300
    assert after_failure(1, ADAPTIVE, retry_after_s=10**9).seconds == 86400


def test_the_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        FreshnessConfig(min_interval_s=600, max_interval_s=300)
    with pytest.raises(ValueError):
        FreshnessConfig(polls_per_entry=0)


def test_header_and_ttl_parsing() -> None:
    assert max_age_s("public, max-age=600") == 600
    assert max_age_s("max-age=60, s-maxage=900") == 900
    assert max_age_s("no-cache") is None and max_age_s("no-store, max-age=600") is None
    assert max_age_s(None) is None and max_age_s("private") is None
    assert expires_in_s("Sun, 01 Mar 2026 13:00:00 GMT", NOW) == 3600
    assert expires_in_s("Sun, 01 Mar 2026 11:00:00 GMT", NOW) is None
    assert expires_in_s("0", NOW) is None and expires_in_s(None, NOW) is None
    assert ttl_s("60") == 3600 and ttl_s(" 5 ") == 300
    assert ttl_s("0") is None and ttl_s("soon") is None and ttl_s(None) is None
    assert server_floor(ttl="30", cache_control="max-age=3600", expires=None, now=NOW) == (
        3600,
        "Cache-Control max-age 60 min",
    )
    assert server_floor(ttl=None, cache_control="no-cache", expires=None, now=NOW) == (None, None)


def test_entries_per_week_uses_the_window_when_the_feed_is_shorter_than_a_week() -> None:
    old = [NOW - timedelta(days=d) for d in (1, 3, 8, 10)]
    assert entries_in_last_week(old, NOW) == 2
    assert entries_per_week(old, NOW) == 2
    hourly = [NOW - timedelta(hours=h) for h in range(10)]  # ten entries an hour apart: 168 a week
    assert entries_per_week(hourly, NOW) == 168
    assert entries_per_week([NOW], NOW) == 1
    assert entries_per_week([], NOW) == 0


def test_human_intervals() -> None:
    assert [human_interval(s) for s in (45, 300, 5400, 7200, 86400, WEEK_S)] == [
        "45 s",
        "5 min",
        "90 min",
        "2 h",
        "1 d",
        "7 d",
    ]


def test_a_pushed_feed_keeps_only_a_backup_poll_at_the_maximum() -> None:
    busy = Interval(600, "publishing rate")
    pushed = while_pushed(busy, ADAPTIVE)
    assert pushed.seconds == ADAPTIVE.max_interval_s and "WebSub" in pushed.reason
    dormant = Interval(30 * 86400, "dormant", dormant=True)
    assert while_pushed(dormant, ADAPTIVE) == dormant  # never shorter than what it had
    assert while_pushed(Interval(3600, "fixed hourly policy"), HOURLY).seconds == 3600  # the operator's choice stands
