"""The pure decisions of monitor delivery: when a message is due, when to retry, what a spike is. No I/O, no clock."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from datetime import datetime, timedelta

from mediabeat.domain.monitors import Digest, MonitorRecord

RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)
MAX_ATTEMPTS = 8  # 30 s, 1, 2, 4, 8, 16, 32 min, then given up: about an hour and a half in all
SPIKE_MIN_MATCHES = 5
SPIKE_SIGMAS = 3.0
SPIKE_BASELINE = timedelta(days=7)


def hour_start(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def day_start(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def delivery_due(monitor: MonitorRecord, *, oldest_pending: datetime, now: datetime) -> bool:
    """Whether a monitor's undelivered matches go out now.

    Without a digest: at once, unless a message went out less than `cooldown_s` ago; then
    when the cool-down ends, as one message with everything that matched meanwhile. Hourly
    (daily) digest: once some pending match is from an earlier UTC hour (day), so each
    message covers the hour (day) before it.
    """
    if monitor.digest == Digest.HOURLY:
        return oldest_pending < hour_start(now)
    if monitor.digest == Digest.DAILY:
        return oldest_pending < day_start(now)
    last = monitor.last_delivered_at
    return last is None or now >= last + timedelta(seconds=monitor.cooldown_s)


def retry_at(attempts: int, now: datetime) -> datetime | None:
    """When to try a failed delivery again after `attempts` attempts; None once it has had MAX_ATTEMPTS."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return now + min(RETRY_BASE * (1 << max(attempts - 1, 0)), RETRY_MAX)


def spike_threshold(history: list[int]) -> float:
    """max(5, mean + 3 standard deviations) of the hourly counts in `history` (population standard deviation)."""
    if not history:
        return float(SPIKE_MIN_MATCHES)
    return max(float(SPIKE_MIN_MATCHES), statistics.fmean(history) + SPIKE_SIGMAS * statistics.pstdev(history))


def hourly_history(counts: Mapping[str, int], *, start: datetime, end: datetime) -> list[int]:
    """The count of each whole UTC hour from `start` to `end` (exclusive), zeros included; keys "YYYY-MM-DDTHH"."""
    hours: list[int] = []
    at = hour_start(start)
    while at < end:
        hours.append(counts.get(at.strftime("%Y-%m-%dT%H"), 0))
        at += timedelta(hours=1)
    return hours


def spike(monitor: MonitorRecord, counts: Mapping[str, int], *, now: datetime) -> tuple[int, float] | None:
    """(this hour's count, the threshold) when this UTC hour's matches so far exceed the monitor's own baseline.

    The baseline is each whole hour of the 7 days before this one (or since the monitor was
    created, if later). At most one spike alert per monitor per hour.
    """
    this_hour = hour_start(now)
    if monitor.last_spike_at is not None and monitor.last_spike_at >= this_hour:
        return None
    current = counts.get(this_hour.strftime("%Y-%m-%dT%H"), 0)
    start = max(this_hour - SPIKE_BASELINE, hour_start(monitor.created_at))
    threshold = spike_threshold(hourly_history(counts, start=start, end=this_hour))
    return (current, threshold) if current > threshold else None
