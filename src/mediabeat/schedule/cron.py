"""Cron expressions: validation, fire times and plain-English descriptions.

The maths is cronsim's, which follows Debian cron across DST changes: a fixed-time job
whose time falls in a spring-forward gap runs right after the gap, and one whose time
repeats in a fall-back fold runs once; wildcard jobs run in both folds. cronsim has no
`nW` (nearest weekday to day n), so that one form is layered on top of cronsim here.
"""

from __future__ import annotations

import calendar
import functools
import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import cron_descriptor
from cronsim import CronSim, CronSimError

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_NEAREST_WEEKDAY = re.compile(r"^([1-9]|[12]\d|3[01])W$", re.IGNORECASE)
# The five fields in order, with the values each takes, for messages about a bad one.
FIELDS = {
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31, L or LW",
    "month": "1-12 or JAN-DEC",
    "day-of-week": "0-7 or SUN-SAT",
}
_ONE_MICROSECOND = timedelta(microseconds=1)


class CronError(ValueError):
    """A cron expression or time zone that cannot be used; the message says why."""


def load_zone(name: str) -> tzinfo:
    """The IANA zone called `name`; CronError when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name!r}: use an IANA name such as UTC or Europe/Berlin") from None


def expand_alias(expression: str) -> str:
    """The five-field form of an expression (`@daily` becomes `0 0 * * *`)."""
    text = " ".join(expression.split())
    return ALIASES.get(text.lower(), text)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A validated cron expression in an IANA time zone. Build it with parse_schedule()."""

    expression: str
    timezone: str
    zone: tzinfo

    def fire_times(self, after: datetime) -> Iterator[datetime]:
        """Fire times strictly after `after` (aware), in the schedule's zone, ascending."""
        return _fire_times(expand_alias(self.expression), self.zone, after)

    def next_fire(self, after: datetime) -> datetime | None:
        """The first fire time strictly after `after`, or None if it never fires again."""
        return next(self.fire_times(after), None)

    def previous_fire(self, at: datetime) -> datetime | None:
        """The last fire time at or before `at`, or None if there is none."""
        return next(self.fire_times_back(at), None)

    def fire_times_back(self, at: datetime) -> Iterator[datetime]:
        """Fire times at or before `at` (aware), in the schedule's zone, newest first."""
        # cronsim's reverse iteration is strictly before; a microsecond later makes it "at or before".
        return _fire_times(expand_alias(self.expression), self.zone, at + _ONE_MICROSECOND, reverse=True)

    def describe(self) -> str:
        """The schedule in words, with its time zone."""
        return f"{describe(self.expression)} ({self.timezone})"


def parse_schedule(expression: str, timezone: str = "UTC") -> CronSchedule:
    """Validate `expression` in `timezone`; CronError says what is wrong."""
    zone = load_zone(timezone)
    expr = expand_alias(expression)
    if expr.startswith("@"):
        raise CronError(f"unknown alias {expression!r}: use one of {', '.join(sorted(ALIASES))}")
    fields = expr.split()
    if len(fields) != 5:
        raise CronError(
            f"{expression!r} has {len(fields)} fields; a cron expression has 5: "
            "minute hour day-of-month month day-of-week"
        )
    if "W" in fields[2].upper() and fields[2].upper() != "LW" and not _NEAREST_WEEKDAY.match(fields[2]):
        raise CronError(f"bad day of month {fields[2]!r}: W is allowed as a single nW (such as 15W) or LW")
    probe = datetime(2000, 1, 1, tzinfo=zone)
    try:
        CronSim(_cronsim_form(fields), probe)
    except CronSimError as exc:
        raise CronError(f"invalid cron expression {expression!r}: {_reason(exc, fields)}") from None
    return CronSchedule(expression=" ".join(expression.split()), timezone=timezone, zone=zone)


def describe(expression: str) -> str:
    """An expression in words, such as "Every 10 minutes"."""
    options = cron_descriptor.Options()
    options.use_24hour_time_format = True
    options.verbose = False
    try:
        return str(cron_descriptor.get_description(expand_alias(expression), options))
    except Exception as exc:  # cron_descriptor raises a family of its own error types
        raise CronError(f"cannot describe {expression!r}: {exc}") from None


@functools.lru_cache(maxsize=1024)
def words(expression: str) -> str | None:
    """describe(), or None for an expression it cannot put in words; cached, because
    cron_descriptor reloads its translations on every call."""
    try:
        return describe(expression)
    except CronError:
        return None


def _reason(exc: CronSimError, fields: list[str]) -> str:
    """cronsim's "Bad minute", with the field's value and the values it takes, or why it never fires."""
    text = str(exc) or "not a valid expression"
    name = text.removeprefix("Bad ")
    if name not in FIELDS:
        return text[0].lower() + text[1:]
    value = fields[list(FIELDS).index(name)]
    if name == "day-of-month" and _parses(_cronsim_form([*fields[:3], "*", fields[4]])):
        return f"it never fires: day-of-month {value!r} does not occur in month {fields[3]!r}"
    return f"bad {name} {value!r}: the {name} field takes {FIELDS[name]}, and ranges, lists and steps of them"


def _parses(expr: str) -> bool:
    try:
        CronSim(expr, datetime(2000, 1, 1))
    except CronSimError:
        return False
    return True


def _cronsim_form(fields: list[str]) -> str:
    """The expression cronsim checks: nW becomes the plain day n, which has the same validity."""
    match = _NEAREST_WEEKDAY.match(fields[2])
    if match:
        fields = [*fields[:2], match.group(1), *fields[3:]]
    return " ".join(fields)


def _fire_times(expr: str, zone: tzinfo, start: datetime, *, reverse: bool = False) -> Iterator[datetime]:
    """Fire times strictly after `start`, ascending (or strictly before it, descending, with `reverse`)."""
    local = start.astimezone(zone)
    fields = expr.split()
    match = _NEAREST_WEEKDAY.match(fields[2])
    if not match:
        yield from CronSim(expr, local, reverse=reverse)
        return
    day = int(match.group(1))
    # Candidates are the days around n; keep those that are the nearest weekday that month.
    lo, hi = max(1, day - 2), min(31, day + 2)
    around = CronSim(" ".join([*fields[:2], f"{lo}-{hi}", fields[3], "*"]), local, reverse=reverse)
    nearest = (t for t in around if t.date() == nearest_weekday(t.year, t.month, day))
    if fields[4] == "*":
        yield from nearest
        return
    # With a restricted day of week, cron fires on either match (the OR rule).
    by_weekday = CronSim(" ".join([*fields[:2], "*", fields[3], fields[4]]), local, reverse=reverse)
    previous = None
    for fire in heapq.merge(nearest, by_weekday, reverse=reverse):
        if fire != previous:
            yield fire
        previous = fire


def nearest_weekday(year: int, month: int, day: int) -> date:
    """The weekday nearest to `day` in that month, never crossing into another month (cron's nW)."""
    last = calendar.monthrange(year, month)[1]
    target = date(year, month, min(day, last))
    weekday = target.weekday()
    if weekday == 5:  # Saturday: Friday before, or Monday after when Friday is last month
        return target - timedelta(days=1) if target.day > 1 else target + timedelta(days=2)
    if weekday == 6:  # Sunday: Monday after, or Friday before when Monday is next month
        return target + timedelta(days=1) if target.day < last else target - timedelta(days=2)
    return target
