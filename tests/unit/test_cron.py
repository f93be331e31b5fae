"""Cron maths: fire times, DST in real zones, the extended syntax, and error messages."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mediabeat.schedule import CronError, describe, parse_schedule
from mediabeat.schedule.cron import nearest_weekday


def fires(expr: str, tz: str, after: datetime, n: int) -> list[str]:
    return [t.isoformat() for t in itertools.islice(parse_schedule(expr, tz).fire_times(after), n)]


NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def test_fire_times_are_strictly_after_and_carry_the_offset() -> None:
    after = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert fires("0 9 * * *", "UTC", after, 2) == ["2026-01-06T09:00:00+00:00", "2026-01-07T09:00:00+00:00"]


def test_spring_forward_gap_runs_right_after_the_gap_new_york() -> None:
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT; a 02:30 job runs at 03:00, once.
    after = datetime(2026, 3, 7, 12, tzinfo=NY)
    assert fires("30 2 * * *", "America/New_York", after, 3) == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
        "2026-03-10T02:30:00-04:00",
    ]


def test_fall_back_fold_runs_a_fixed_time_job_once_new_york() -> None:
    # 2026-11-01: 01:00-02:00 happens twice; a 01:30 job runs only in the first fold.
    after = datetime(2026, 10, 31, 12, tzinfo=NY)
    assert fires("30 1 * * *", "America/New_York", after, 2) == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
    ]


def test_fall_back_fold_runs_a_wildcard_job_in_both_folds_berlin() -> None:
    # 2026-10-25: 03:00 CEST falls back to 02:00 CET; an every-30-minutes job fires in both folds.
    after = datetime(2026, 10, 25, 1, 45, tzinfo=BERLIN)
    assert fires("*/30 * * * *", "Europe/Berlin", after, 5) == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_spring_forward_berlin_hourly_skips_the_missing_hour() -> None:
    after = datetime(2026, 3, 29, 0, 30, tzinfo=BERLIN)
    assert fires("0 * * * *", "Europe/Berlin", after, 3) == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("@hourly", "2026-01-01T01:00:00+00:00"),
        ("@daily", "2026-01-02T00:00:00+00:00"),
        ("@weekly", "2026-01-04T00:00:00+00:00"),
        ("@monthly", "2026-02-01T00:00:00+00:00"),
        ("@yearly", "2027-01-01T00:00:00+00:00"),
    ],
)
def test_aliases(alias: str, expected: str) -> None:
    assert fires(alias, "UTC", datetime(2026, 1, 1, tzinfo=UTC), 1) == [expected]


def test_names_ranges_steps_and_lists() -> None:
    after = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday
    assert fires("15 8-17/4 * JAN MON-WED", "UTC", after, 4) == [
        "2026-01-05T08:15:00+00:00",
        "2026-01-05T12:15:00+00:00",
        "2026-01-05T16:15:00+00:00",
        "2026-01-06T08:15:00+00:00",
    ]


def test_day_of_month_or_day_of_week() -> None:
    # Both restricted: cron fires on the 13th OR on Fridays.
    after = datetime(2026, 2, 1, tzinfo=UTC)
    assert fires("0 0 13 * FRI", "UTC", after, 3) == [
        "2026-02-06T00:00:00+00:00",
        "2026-02-13T00:00:00+00:00",
        "2026-02-20T00:00:00+00:00",
    ]


def test_last_day_nth_weekday_and_nearest_weekday() -> None:
    after = datetime(2026, 1, 1, tzinfo=UTC)
    assert fires("0 0 L * *", "UTC", after, 2) == ["2026-01-31T00:00:00+00:00", "2026-02-28T00:00:00+00:00"]
    assert fires("0 0 * * MON#2", "UTC", after, 2) == ["2026-01-12T00:00:00+00:00", "2026-02-09T00:00:00+00:00"]
    # 15 Feb 2026 is a Sunday -> Monday 16th; 15 Mar is a Sunday -> 16th; 15 Aug is a Saturday -> Friday 14th.
    got = fires("0 9 15W * *", "UTC", after, 8)
    assert got[1:3] == ["2026-02-16T09:00:00+00:00", "2026-03-16T09:00:00+00:00"]
    assert "2026-08-14T09:00:00+00:00" in got


def test_nearest_weekday_never_leaves_the_month() -> None:
    assert nearest_weekday(2026, 8, 1).isoformat() == "2026-08-03"  # Saturday the 1st -> Monday the 3rd
    assert nearest_weekday(2026, 5, 31).isoformat() == "2026-05-29"  # Sunday the 31st -> Friday the 29th
    assert nearest_weekday(2026, 2, 31).isoformat() == "2026-02-27"  # past the month's end: its last day


def test_previous_fire_is_at_or_before() -> None:
    schedule = parse_schedule("0 * * * *")
    assert schedule.previous_fire(datetime(2026, 1, 1, 10, 0, tzinfo=UTC)) == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert schedule.previous_fire(datetime(2026, 1, 1, 10, 59, tzinfo=UTC)) == datetime(2026, 1, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "tz"),
    [
        ("0 9 15W * *", "UTC"),
        ("30 8 1W * MON", "Europe/Paris"),
        ("*/20 1-3 * * *", "Europe/Paris"),
        ("@monthly", "UTC"),
    ],
)
def test_fire_times_back_are_the_forward_ones_newest_first(expr: str, tz: str) -> None:
    """Backwards (newest first, at or before) over a year with two DST changes, nW and the OR rule included."""
    schedule = parse_schedule(expr, tz or "UTC")
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    forward = list(itertools.takewhile(lambda t: t <= end, schedule.fire_times(start)))
    backward = list(itertools.takewhile(lambda t: t > start, schedule.fire_times_back(forward[-1])))
    assert len(forward) > 10 and backward == forward[::-1]
    assert schedule.previous_fire(forward[5] + timedelta(seconds=1)) == forward[5]


@pytest.mark.parametrize(
    ("expr", "tz", "message"),
    [
        ("61 * * * *", "UTC", "invalid cron expression '61 * * * *': bad minute"),
        ("* * *", "UTC", "'* * *' has 3 fields; a cron expression has 5"),
        ("@reboot", "UTC", "unknown alias '@reboot'"),
        ("0 0 30 2 *", "UTC", "it never fires: day-of-month '30' does not occur in month '2'"),
        ("0 25 * * *", "UTC", "bad hour '25': the hour field takes 0-23, and ranges, lists and steps of them"),
        ("0 0 1,15W * *", "UTC", "W is allowed as a single nW"),
        ("* * * * *", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("* * * * *", "", "unknown time zone ''"),
    ],
)
def test_invalid_expressions_say_what_is_wrong(expr: str, tz: str, message: str) -> None:
    with pytest.raises(CronError, match=message.replace("*", r"\*").replace("(", r"\(")):
        parse_schedule(expr, tz)


def test_describe_in_words() -> None:
    assert describe("*/10 * * * *") == "Every 10 minutes"
    assert describe("0 0 * * *") == "At 00:00"
    assert parse_schedule("@hourly", "Europe/Berlin").describe() == "Every hour (Europe/Berlin)"
