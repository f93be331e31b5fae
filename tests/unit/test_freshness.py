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
    Rule,
    after_failure,
    after_success,
    entries_in_last_week,
    entries_per_week,
    entries_per_week_from_ages,
    entry_frequency_s,
    expires_in_s,
    failure_cap_s,
    human_interval,
    max_age_s,
    rate_after_silence,
    rate_interval_s,
    server_floor,
    ttl_s,
    while_pushed,
    window_limit_s,
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


def test_the_publishing_rate_sets_the_interval_from_the_target_delay() -> None:
    hourly_feed = after_success(poll(entries_last_week=168, dated_entries=168), ADAPTIVE)
    assert hourly_feed.seconds == 900  # published hourly: polled every target delay (15 min)
    assert hourly_feed.reason == "publishing rate: 168 entries in the last week"
    # Twenty entries all younger than a week: the rate is measured over them, and the reason says so.
    young = after_success(poll(entries_last_week=168, dated_entries=20), ADAPTIVE)
    assert young.reason == "publishing rate: about 168 entries a week, from its 20 entries of the last week"
    stored = after_success(
        poll(previous_interval_s=900, entries_last_week=168, dated_entries=1, unchanged=True), ADAPTIVE
    )
    assert stored.reason == "publishing rate: 168 entries a week, as last measured" and stored.seconds == 900
    daily = after_success(poll(entries_last_week=7, dated_entries=20), ADAPTIVE)
    assert daily.seconds == 6 * HOUR_S  # four polls per gap between entries
    busy = after_success(poll(entries_last_week=5000, dated_entries=50, links=50), ADAPTIVE)
    assert busy.seconds == 300  # an entry every 2 min: at the minimum, a failure takes at most 5 minutes' entries
    assert busy.reason == (
        "publishing rate: about 5000 entries a week, from its 50 entries of the last week; "
        "an entry more often than every 7.5 min: polled at the minimum"
    )
    # An entry every 10 minutes: half the target delay, not more often.
    brisk = after_success(poll(entries_last_week=1008, dated_entries=50, links=50), ADAPTIVE)
    assert brisk.seconds == 450 and "minimum" not in brisk.reason
    quiet = after_success(poll(entries_last_week=1, dated_entries=3), ADAPTIVE)
    assert quiet.seconds == 86400 and "capped at the 1 d maximum" in quiet.reason
    silent = after_success(poll(entries_last_week=0, dated_entries=3), ADAPTIVE)
    assert silent.seconds == 86400 and "no entry in the last week" in silent.reason
    faster = FreshnessConfig(target_delay_s=300)
    assert after_success(poll(entries_last_week=5000, dated_entries=50), faster).seconds == 300  # the minimum
    assert after_success(poll(entries_last_week=168, dated_entries=20), faster).seconds == 300
    assert rate_interval_s(168, ADAPTIVE) == 900 and rate_interval_s(1008, ADAPTIVE) == 450
    assert rate_interval_s(1344, ADAPTIVE) == 450  # an entry every 7.5 min is not faster than half the target
    assert rate_interval_s(1345, ADAPTIVE) == 300 and rate_interval_s(10_000, ADAPTIVE) == 300


def test_the_deprecated_polls_per_entry_keeps_the_old_rule_and_says_so() -> None:
    old = FreshnessConfig(polls_per_entry=6)
    hourly_feed = after_success(poll(entries_last_week=168, dated_entries=168), old)
    assert hourly_feed.seconds == 600
    assert (
        hourly_feed.reason
        == "publishing rate: 168 entries in the last week (MEDIABEAT_FEED_POLLS_PER_ENTRY=6, deprecated)"
    )
    busy = after_success(poll(entries_last_week=5000, dated_entries=50), old)
    assert busy.seconds == 300 and "raised to the 5 min minimum" in busy.reason


def test_a_single_dated_entry_gives_no_rate() -> None:
    # A new feed showing one entry: its rate is unknown, not "one a week" (which would wait a day).
    first = after_success(poll(entries_last_week=1, dated_entries=1, links=1, new_links=1), ADAPTIVE)
    assert (first.seconds, first.reason, first.rule) == (HOUR_S, "first fetch, one dated entry", Rule.FIRST)


def test_the_window_rule_polls_before_a_third_of_the_window_can_turn_over() -> None:
    # 2,016 entries a week (one every 5 min) in a 6-entry window: it lasts 30 min, so at most every 10 min.
    short = after_success(
        poll(entries_last_week=2016, dated_entries=6, links=6, new_links=1), FreshnessConfig(target_delay_s=3600)
    )
    assert short.seconds == 600 and "within a third of the time its 6 entries last" in short.reason
    # The default target keeps busy feeds well inside a 20-entry window (100 min): the rule does not bind.
    assert after_success(poll(entries_last_week=1008, dated_entries=20, links=20), ADAPTIVE).seconds == 450
    assert window_limit_s(2016, 20) == 2000 and window_limit_s(2016, None) == 1000  # 10 entries assumed
    assert window_limit_s(None, 20) is None and window_limit_s(0, 20) is None
    # The server's ask still wins (it is the server's choice), up to the maximum.
    ttl = after_success(poll(entries_last_week=2016, dated_entries=6, links=6, server_floor_s=7200), ADAPTIVE)
    assert ttl.seconds == 7200


def test_a_first_fetch_without_dates_starts_at_an_hour() -> None:
    first = after_success(poll(links=10, new_links=10), ADAPTIVE)
    assert (first.seconds, first.reason) == (HOUR_S, "first fetch, entries undated")


def test_low_overlap_halves_the_interval_high_overlap_without_dates_doubles_it() -> None:
    missed = after_success(poll(previous_interval_s=7200, links=30, new_links=25), ADAPTIVE)
    assert missed.seconds == 3600 and "only 5 of 30 links seen before" in missed.reason
    # Low overlap wins over a slower publishing rate: items may have fallen off the feed.
    missed_dated = after_success(
        poll(previous_interval_s=14400, links=30, new_links=25, entries_last_week=7, dated_entries=30), ADAPTIVE
    )
    assert missed_dated.seconds == 7200
    calm = after_success(poll(previous_interval_s=3600, links=30, new_links=2), ADAPTIVE)
    assert calm.seconds == 7200 and "28 of 30 links seen before, polling less often" in calm.reason
    middle = after_success(poll(previous_interval_s=3600, links=30, new_links=15), ADAPTIVE)
    assert middle.seconds == 3600 and "kept" in middle.reason
    # With dates, high overlap does not lengthen past the rate (a short feed of a busy site stays fresh).
    dated = after_success(
        poll(previous_interval_s=900, links=30, new_links=1, entries_last_week=168, dated_entries=30), ADAPTIVE
    )
    assert dated.seconds == 900


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
    assert shorter.seconds == 21600 and "server" not in shorter.reason  # daily: polled every 6 h


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


def test_a_failing_feed_with_a_known_rate_is_retried_at_its_healthy_interval_at_most() -> None:
    # One entry every 10 min: healthy every 7.5 min; its backoff stops there, so once the server is back
    # the feed is read before much of its window falls off (a backoff of hours would lose it).
    busy = [after_failure(n, ADAPTIVE, entries_last_week=1008) for n in range(1, 6)]
    assert [s.seconds for s in busy] == [300, 450, 450, 450, 450]
    assert "retried at least every 7.5 min" in busy[1].reason and "retried" not in busy[0].reason
    assert failure_cap_s(1008, ADAPTIVE) == 450 and failure_cap_s(None, ADAPTIVE) is None
    # One entry every 5 min is a busy feed: healthy at the minimum, and retried there.
    assert failure_cap_s(2016, ADAPTIVE) == 300
    # A daily feed (healthy every 6 h, a 10-entry window lasts 10 days): the backoff doubles up to 6 h.
    daily = [after_failure(n, ADAPTIVE, entries_last_week=7).seconds for n in range(1, 9)]
    assert daily == [300, 600, 1200, 2400, 4800, 9600, 19200, 21600]
    # A narrow window caps it harder: 2,016 a week with the target at an hour: 10 assumed entries last 50 min.
    assert failure_cap_s(2016, FreshnessConfig(target_delay_s=3600)) == 1000
    # Never below the minimum.
    assert failure_cap_s(100_000, FreshnessConfig(min_interval_s=600)) == 600


def test_a_capped_backoff_turns_dormant_after_the_same_time_not_fewer_hours() -> None:
    # Uncapped, the 10th failure comes after 9 steps: 5 min * (1 + 2 + ... + 256) = 42.6 h.
    needed = sum(after_failure(n, ADAPTIVE).seconds for n in range(1, 10))
    assert needed == 153_300
    # Retried every 7.5 min, then every 5 min once its window has turned over, it fails as long.
    steps = [after_failure(n, ADAPTIVE, entries_last_week=2016) for n in range(1, 700)]
    first_dormant = next(n for n, s in enumerate(steps, start=1) if s.dormant)
    elapsed = sum(s.seconds for s in steps[: first_dormant - 1])
    assert elapsed >= needed and elapsed - steps[first_dormant - 2].seconds < needed
    assert steps[first_dormant - 1].seconds == 30 * 86400
    assert not after_failure(10, ADAPTIVE, entries_last_week=2016).dormant
    assert after_failure(10, ADAPTIVE).dormant  # rate unknown: ten failures, as before
    assert after_failure(10, HOURLY, entries_last_week=2016).dormant  # the hourly policy has no cap


def test_retry_after_is_a_floor_on_the_backoff() -> None:
    wait = after_failure(1, ADAPTIVE, retry_after_s=7200)
    assert wait.seconds == 7200 and "Retry-After 2.0 h" not in wait.reason and "Retry-After 2 h" in wait.reason
    assert after_failure(1, ADAPTIVE, retry_after_s=60).seconds == 300
    assert after_failure(1, ADAPTIVE, retry_after_s=10**9).seconds == 86400
    # Also above the cap of a busy feed: the server's ask is honoured.
    capped = after_failure(3, ADAPTIVE, retry_after_s=3600, entries_last_week=2016)
    assert capped.seconds == 3600 and "Retry-After" in capped.reason


def test_the_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        FreshnessConfig(min_interval_s=600, max_interval_s=300)
    with pytest.raises(ValueError):
        FreshnessConfig(polls_per_entry=0)
    with pytest.raises(ValueError):
        FreshnessConfig(target_delay_s=0)


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
    assert entries_per_week_from_ages([3600.0 * h for h in range(10)]) == 168  # the same, from ages in seconds
    assert entries_per_week_from_ages([0.0, 8 * 86400.0]) == 1  # one in the last week


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


def test_a_failing_feed_whose_window_turned_over_is_retried_at_the_minimum() -> None:
    # One entry every 10 min in 20 entries: they last 200 min. Failing longer than that, every entry it listed
    # may be gone, and once it answers each entry falls off 10 min after the next one comes: retry every 5 min.
    steps = [after_failure(n, ADAPTIVE, entries_last_week=1008, window=20) for n in range(1, 40)]
    seconds = [s.seconds for s in steps]
    assert seconds[:4] == [300, 450, 450, 450]
    turned = next(n for n, s in enumerate(steps) if "fall off" in s.reason)
    assert sum(seconds[:turned]) == 12000 and set(seconds[turned:]) == {300}  # the rests land on 200 min
    assert all(s.rule is Rule.BACKOFF for s in steps)
    # A daily feed's window lasts 20 days: its backoff is the usual one.
    daily = [after_failure(n, ADAPTIVE, entries_last_week=7, window=20).seconds for n in range(1, 9)]
    assert daily == [300, 600, 1200, 2400, 4800, 9600, 19200, 21600]
    # The stored window sets the window rule's cap (10 entries assumed without it).
    assert failure_cap_s(2016, FreshnessConfig(target_delay_s=7200), 20) == 2000
    assert failure_cap_s(2016, FreshnessConfig(target_delay_s=7200)) == 1000


def test_a_young_windows_rate_counts_to_now_and_ages_while_nothing_new_comes() -> None:
    # Five entries in a 10-minute burst an hour ago: four gaps over 70 min, not over the 10 min of the burst.
    burst = [3600.0 + 150 * k for k in range(5)]
    assert entries_per_week_from_ages(burst) == int(4 * WEEK_S / 4200)
    # A 304 or an unchanged body a day later: the same four gaps over a day more.
    rate = entries_per_week_from_ages(burst)
    aged = rate_after_silence(rate, 5, 86400)
    assert aged == int(4 * WEEK_S / (4 * WEEK_S / rate + 86400))
    assert rate_after_silence(rate, 5, 10**9) == 5  # never below the entries it listed
    # A rate from the last week's count (the window is older than a week) and unknown ones stay as they are.
    assert rate_after_silence(7, 20, 86400) == 7
    assert rate_after_silence(None, 20, 86400) is None and rate_after_silence(500, None, 86400) == 500


def test_the_stored_window_replaces_the_assumed_one_when_nothing_is_parsed() -> None:
    hour = FreshnessConfig(target_delay_s=7200)  # the rate rule alone: every hour
    unchanged = poll(previous_interval_s=600, entries_last_week=2016, dated_entries=1, unchanged=True)
    assumed = after_success(unchanged, hour)
    assert assumed.seconds == 1000 and "its 10 (assumed) entries last" in assumed.reason
    assert assumed.rule is Rule.WINDOW
    known = after_success(poll(**{**_fields(unchanged), "previous_window": 20}), hour)
    assert known.seconds == 2000 and "its 20 entries last" in known.reason


def _fields(p: PollResult) -> dict[str, object]:
    return {name: getattr(p, name) for name in PollResult.__slots__}


def test_a_list_that_grew_lost_nothing_so_low_overlap_does_not_shorten() -> None:
    # A young feed listed 1 entry, now 3 (2 new, the old one still there): nothing fell off.
    grew = after_success(poll(previous_interval_s=7200, links=3, new_links=2, previous_window=1), ADAPTIVE)
    assert grew.seconds == 7200 and grew.rule is Rule.KEPT
    # Without the stored window, or when listed entries went missing, low overlap halves as before.
    unknown = after_success(poll(previous_interval_s=7200, links=3, new_links=3), ADAPTIVE)
    assert unknown.seconds == 3600 and unknown.rule is Rule.OVERLAP_SOONER
    fell = after_success(poll(previous_interval_s=7200, links=3, new_links=3, previous_window=3), ADAPTIVE)
    assert fell.seconds == 3600


def test_an_empty_feed_is_polled_after_the_target_delay_then_less_often() -> None:
    empty = after_success(poll(links=0), ADAPTIVE)
    assert (empty.seconds, empty.reason, empty.rule) == (900, "no entries yet", Rule.FIRST)
    still = after_success(poll(previous_interval_s=900, links=0, previous_window=0), ADAPTIVE)
    assert (still.seconds, still.reason) == (1800, "no entries yet, polling less often")
    unchanged = after_success(poll(previous_interval_s=1800, unchanged=True, previous_window=0), ADAPTIVE)
    assert unchanged.seconds == 3600 and unchanged.reason.startswith("feed unchanged")
