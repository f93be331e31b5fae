"""Per-feed fetch intervals: how long a feed rests after each fetch, and why. Pure: no I/O, no clock reads.

The adaptive policy combines what the feed-reader world learned:
- the publishing rate (Miniflux's entry_frequency: a week divided by the entries of the last week),
  polled `polls_per_entry` times per mean gap between entries, so a new item waits a fraction of that gap;
- the overlap with the previous poll (Media Cloud's rss-fetcher): when under a third of the links were seen
  before, items may have fallen off the feed between two polls, so the interval halves; when two thirds or
  more were seen and the feed gives no dates, the interval doubles;
- the bounds: a minimum and a maximum interval (settings), and what the server asks for (RSS <ttl>,
  Cache-Control max-age, Expires, Retry-After), which can lengthen the interval up to the maximum;
- failures: an exponential backoff from the minimum, then, after `dormant_after` failures in a row, the
  dormant interval (default 30 days), never "disabled forever".

The "hourly" policy is the seed's fixed schedule: every feed an hour apart, whatever it does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

WEEK_S = 7 * 24 * 3600
HOUR_S = 3600
# A feed whose entries carry no dates and that was never fetched starts here.
DEFAULT_INTERVAL_S = HOUR_S
# The overlap thresholds of Media Cloud's rss-fetcher.
SHORTEN_BELOW = 1 / 3
LENGTHEN_FROM = 2 / 3
# The first failures come back quickly (a blip), then double up to the maximum interval.
BACKOFF_FIRST_S = 5 * 60

_MAX_AGE = re.compile(r"(?:^|[,\s])(s-maxage|max-age)\s*=\s*\"?(\d{1,10})", re.IGNORECASE)


class FeedPolicy(StrEnum):
    """How feed intervals are chosen: MEDIABEAT_FEED_POLICY."""

    ADAPTIVE = "adaptive"
    HOURLY = "hourly"


@dataclass(frozen=True, slots=True)
class FreshnessConfig:
    policy: FeedPolicy = FeedPolicy.ADAPTIVE
    min_interval_s: int = 5 * 60
    max_interval_s: int = 24 * HOUR_S
    dormant_interval_s: int = 30 * 24 * HOUR_S
    dormant_after: int = 10  # failures in a row
    polls_per_entry: float = 6.0

    def __post_init__(self) -> None:
        if not 0 < self.min_interval_s <= self.max_interval_s:
            raise ValueError("the minimum feed interval must be positive and at most the maximum")
        if self.polls_per_entry <= 0 or self.dormant_after < 1:
            raise ValueError("polls_per_entry must be positive and dormant_after at least 1")


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one successful fetch showed: the inputs of the next interval."""

    previous_interval_s: int | None  # None: the first fetch
    entries_last_week: int | None  # entries dated within the week before the fetch; None: no dated entries
    dated_entries: int = 0  # entries with a date at all
    links: int = 0  # distinct links in the feed (0 when the body was unchanged)
    new_links: int = 0  # of which never seen before
    unchanged: bool = False  # 304 Not Modified, or the same body as last time
    server_floor_s: int | None = None  # the longest of <ttl>, max-age, Expires
    server_floor_why: str | None = None


@dataclass(frozen=True, slots=True)
class Interval:
    seconds: int
    reason: str
    dormant: bool = False


def _human(seconds: float) -> str:
    seconds = round(seconds)
    if seconds % 86400 == 0 and seconds >= 86400:
        return f"{seconds // 86400} d"
    if seconds >= 2 * HOUR_S:
        return f"{seconds / HOUR_S:.1f} h".replace(".0 h", " h")
    if seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def human_interval(seconds: float) -> str:
    """`300` -> "5 min", `5400` -> "90 min", `86400` -> "1 d"."""
    return _human(seconds)


def entry_frequency_s(entries_last_week: int, *, config: FreshnessConfig) -> int:
    """Miniflux's formula: a week / the entries of the last week, clamped to the bounds (max when none)."""
    if entries_last_week <= 0:
        return config.max_interval_s
    return _clamp(WEEK_S // entries_last_week, config)


def _clamp(seconds: float, config: FreshnessConfig) -> int:
    return int(min(max(seconds, config.min_interval_s), config.max_interval_s))


def after_success(poll: PollResult, config: FreshnessConfig) -> Interval:
    """The interval after a successful fetch (200 parsed, 200 with an unchanged body, or 304)."""
    if config.policy is FeedPolicy.HOURLY:
        return Interval(HOUR_S, "fixed hourly policy")
    seconds, reason = _candidate(poll, config)
    if seconds < config.min_interval_s:
        seconds, reason = config.min_interval_s, f"{reason}; raised to the {_human(config.min_interval_s)} minimum"
    elif seconds > config.max_interval_s:
        seconds, reason = config.max_interval_s, f"{reason}; capped at the {_human(config.max_interval_s)} maximum"
    if poll.server_floor_s is not None and poll.server_floor_s > seconds:
        floor = min(poll.server_floor_s, config.max_interval_s)
        if floor > seconds:
            seconds, reason = floor, f"the server asks for {poll.server_floor_why or _human(floor)}"
    return Interval(int(seconds), reason)


def _candidate(poll: PollResult, config: FreshnessConfig) -> tuple[float, str]:
    rate: float | None = None
    rate_why = ""
    if poll.entries_last_week:
        rate = WEEK_S / poll.entries_last_week / config.polls_per_entry
        rate_why = f"publishing rate: {poll.entries_last_week} entries in the last week"
    elif poll.dated_entries and poll.entries_last_week == 0:
        rate = float(config.max_interval_s)
        rate_why = "publishing rate: no entry in the last week"
    previous = poll.previous_interval_s
    if previous is None:
        return (rate, rate_why) if rate is not None else (DEFAULT_INTERVAL_S, "first fetch, entries undated")
    seen_share = _seen_share(poll)
    if seen_share is not None and seen_share < SHORTEN_BELOW:
        shorter = min(rate if rate is not None else math.inf, previous / 2)
        seen = poll.links - poll.new_links
        return shorter, f"overlap: only {seen} of {poll.links} links seen before, polling sooner"
    if rate is not None:
        return rate, rate_why
    if seen_share is not None and seen_share >= LENGTHEN_FROM:
        why = "feed unchanged" if poll.unchanged else f"overlap: {poll.links - poll.new_links} of {poll.links} links"
        return previous * 2, f"{why} seen before, polling less often"
    return previous, "overlap between the thirds, interval kept"


def _seen_share(poll: PollResult) -> float | None:
    if poll.unchanged:
        return 1.0
    if poll.links <= 0:
        return None
    return (poll.links - poll.new_links) / poll.links


def after_failure(
    failures: int, config: FreshnessConfig, *, retry_after_s: int | None = None, error: str = ""
) -> Interval:
    """The interval after the `failures`-th failure in a row: backoff, then dormancy; Retry-After is a floor."""
    if failures >= config.dormant_after:
        return Interval(
            config.dormant_interval_s,
            f"dormant after {failures} failures in a row, polled every {_human(config.dormant_interval_s)}",
            dormant=True,
        )
    if config.policy is FeedPolicy.HOURLY:
        # The seed's backoff: the next hourly run, then 1, 2, 4 ... hours, at most a day apart.
        seconds = min(HOUR_S * (1 << min(max(failures - 2, 0), 10)), 24 * HOUR_S)
    else:
        seconds = min(BACKOFF_FIRST_S * (1 << min(max(failures - 1, 0), 20)), config.max_interval_s)
        seconds = max(seconds, config.min_interval_s)
    reason = f"backoff after {failures} failure{'s' if failures != 1 else ''} in a row"
    if retry_after_s is not None and retry_after_s > seconds:
        seconds = min(retry_after_s, max(config.max_interval_s, 24 * HOUR_S))
        reason = f"the server asks for Retry-After {_human(retry_after_s)}"
    return Interval(int(seconds), reason + (f": {error}" if error else ""))


def entries_in_last_week(dates: list[datetime], now: datetime) -> int:
    """How many of these entry dates fall in the week before `now` (future dates count as now)."""
    start = now - timedelta(seconds=WEEK_S)
    return sum(1 for d in dates if d > start)


def entries_per_week(dates: list[datetime], now: datetime) -> int:
    """The publishing rate, entries a week: those of the last week, or, when the feed's whole window is
    younger than a week (a short feed of a busy site), the rate over that window."""
    in_week = entries_in_last_week(dates, now)
    if len(dates) >= 2 and in_week == len(dates):
        span = (max(dates) - min(dates)).total_seconds()
        if span > 0:
            return max(in_week, min(int((len(dates) - 1) * WEEK_S / span), 100_000))
    return in_week


def max_age_s(cache_control: str | None) -> int | None:
    """Cache-Control max-age (or s-maxage) in seconds; None when absent or no-cache/no-store."""
    if not cache_control:
        return None
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return None
    ages = [int(m.group(2)) for m in _MAX_AGE.finditer(cache_control)]
    return max(ages) if ages else None


def expires_in_s(expires: str | None, now: datetime) -> int | None:
    """Seconds from `now` until an Expires date; None when absent, invalid or past."""
    if not expires:
        return None
    try:
        moment = parsedate_to_datetime(expires)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = int((moment - now).total_seconds())
    return seconds if seconds > 0 else None


def ttl_s(ttl: str | None) -> int | None:
    """RSS <ttl> (minutes) in seconds; None when absent or not a positive number."""
    if not ttl or not ttl.strip().isdigit():
        return None
    minutes = int(ttl.strip()[:7])
    return minutes * 60 if minutes > 0 else None


def server_floor(
    *, ttl: str | None, cache_control: str | None, expires: str | None, now: datetime
) -> tuple[int | None, str | None]:
    """The longest rest the server asks for, with its source, from RSS <ttl>, Cache-Control and Expires."""
    asks: list[tuple[int, str]] = []
    if (t := ttl_s(ttl)) is not None:
        asks.append((t, f"RSS ttl {_human(t)}"))
    if (m := max_age_s(cache_control)) is not None:
        asks.append((m, f"Cache-Control max-age {_human(m)}"))
    if (e := expires_in_s(expires, now)) is not None:
        asks.append((e, f"Expires in {_human(e)}"))
    if not asks:
        return None, None
    seconds, why = max(asks)
    return seconds, why


def while_pushed(interval: Interval, config: FreshnessConfig) -> Interval:
    """A feed its WebSub hub pushes needs only a backup poll: the long interval (the maximum), never shorter."""
    if config.policy is FeedPolicy.HOURLY or interval.dormant or interval.seconds >= config.max_interval_s:
        return interval
    return Interval(
        config.max_interval_s, f"pushed by its WebSub hub: a backup poll every {_human(config.max_interval_s)}"
    )
