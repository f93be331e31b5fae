"""Per-feed fetch intervals: how long a feed rests after each fetch, and why. Pure: no I/O, no clock reads.

The adaptive policy combines what the feed-reader world learned:
- the publishing rate (Miniflux's entry_frequency: a week divided by the entries of the last week, the mean
  gap g between entries) and the target delay D (`target_delay_s`, default 15 min): a feed is polled every
  g * D / 1 h, but never more often than every D / 2. A feed publishing hourly is polled every D, so every
  item of a feed that publishes at least hourly is found within D; the busiest feeds are polled every D / 2
  (not every 5 minutes); a feed publishing daily every 6 hours, four polls per gap between its entries.
  Measured against square-root allocation (Cho & Garcia-Molina: interval proportional to 1/sqrt(rate), which
  minimises the mean delay for a given number of requests), this rule needs fewer requests to reach the same
  delay for the feeds that publish at least hourly (docs/benchmarks.md, "Feed freshness");
- a window younger than a week (a short feed of a busy site, or a young feed) gives the rate of its gaps over
  the time from its oldest entry to now, and that rate ages on each 304 or unchanged body (rate_after_silence):
  a burst in a young feed is not its rate for days;
- the window rule: a feed lists its newest N entries (stored: feeds.window_entries), which at its rate last
  N * g; the interval stays within a third of that, so an item (or a burst of up to two thirds of the window)
  cannot fall off between polls;
- the overlap with the previous poll (Media Cloud's rss-fetcher): when under a third of the links were seen
  before and some listed at the last parse are gone, items may have fallen off the feed between two polls, so
  the interval halves; when two thirds or more were seen and the feed gives no dates, the interval doubles;
- the bounds: a minimum and a maximum interval (settings), and what the server asks for (RSS <ttl>,
  Cache-Control max-age, Expires, Retry-After), which can lengthen the interval up to the maximum;
- failures: an exponential backoff from the minimum, capped by the rate and window rules (a feed that
  publishes every 5 minutes is retried every 7.5 minutes), at the minimum once it has failed longer than its
  window lasts (its entries then fall off one per gap as soon as it answers), then, after failing as long as
  `dormant_after` uncapped backoff steps last, the dormant interval (default 30 days), never "disabled
  forever".

The "hourly" policy is the seed's fixed schedule: every feed an hour apart, whatever it does.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
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
# The window rule: poll within this share of the time the feed's window lasts at its publishing rate.
WINDOW_SHARE = 1 / 3
# The window assumed when it is unknown (a failure, a 304 or an unchanged body): feeds list 10 to 50
# entries (WordPress 10, most news sites 20 to 50), so 10 errs on the side of polling sooner.
ASSUMED_WINDOW = 10

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
    dormant_after: int = 10  # failures in a row (uncapped backoff steps: see after_failure)
    target_delay_s: int = 15 * 60  # the longest wait for an item of a feed that publishes at least hourly
    polls_per_entry: float | None = None  # deprecated: the old rule (a week / entries / polls_per_entry)

    def __post_init__(self) -> None:
        if not 0 < self.min_interval_s <= self.max_interval_s:
            raise ValueError("the minimum feed interval must be positive and at most the maximum")
        if self.target_delay_s <= 0 or self.dormant_after < 1:
            raise ValueError("target_delay_s must be positive and dormant_after at least 1")
        if self.polls_per_entry is not None and self.polls_per_entry <= 0:
            raise ValueError("polls_per_entry must be positive")


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
    # Entries the feed listed at the last parsed fetch (feeds.window_entries); None when unknown. With it the
    # window rule uses the feed's own window on a 304 or an unchanged body, and a list that grew since then
    # (a young feed) shows that nothing fell off it.
    previous_window: int | None = None


class Rule(StrEnum):
    """The rule that set an interval last (the benchmark counts requests by it; the reason says it in words)."""

    RATE = "rate"
    WINDOW = "window"
    OVERLAP_SOONER = "overlap sooner"
    OVERLAP_LATER = "overlap later"
    KEPT = "kept"
    FIRST = "first fetch"
    MINIMUM = "minimum"
    MAXIMUM = "maximum"
    SERVER = "server"
    BACKOFF = "backoff"
    RETRY_AFTER = "retry-after"
    DORMANT = "dormant"
    PUSHED = "pushed"
    HOURLY = "hourly"


@dataclass(frozen=True, slots=True)
class Interval:
    seconds: int
    reason: str
    dormant: bool = False
    rule: Rule = Rule.RATE


def _human(seconds: float) -> str:
    seconds = round(seconds)
    if seconds % 86400 == 0 and seconds >= 86400:
        return f"{seconds // 86400} d"
    if seconds >= 2 * HOUR_S:
        return f"{seconds / HOUR_S:.1f} h".replace(".0 h", " h")
    if seconds >= 60:
        return f"{seconds / 60:.1f} min".replace(".0 min", " min")
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
        return Interval(HOUR_S, "fixed hourly policy", rule=Rule.HOURLY)
    seconds, reason, rule = _candidate(poll, config)
    window = poll.links or poll.previous_window
    limit = window_limit_s(poll.entries_last_week, window)
    if limit is not None and seconds > limit:
        seconds, rule = limit, Rule.WINDOW
        reason = f"{reason}; within a third of the time its {window or f'{ASSUMED_WINDOW} (assumed)'} entries last"
    if seconds < config.min_interval_s:
        seconds, reason = config.min_interval_s, f"{reason}; raised to the {_human(config.min_interval_s)} minimum"
        rule = Rule.MINIMUM
    elif seconds > config.max_interval_s:
        seconds, reason = config.max_interval_s, f"{reason}; capped at the {_human(config.max_interval_s)} maximum"
        rule = Rule.MAXIMUM
    if poll.server_floor_s is not None and poll.server_floor_s > seconds:
        floor = min(poll.server_floor_s, config.max_interval_s)
        if floor > seconds:
            seconds, reason = floor, f"the server asks for {poll.server_floor_why or _human(floor)}"
            rule = Rule.SERVER
    return Interval(int(seconds), reason, rule=rule)


def rate_interval_s(entries_last_week: int, config: FreshnessConfig) -> float:
    """The publishing-rate rule before the bounds: the mean gap between entries times target delay / 1 h, at
    least half the target delay; the minimum for a busy feed (with the deprecated polls_per_entry: the gap
    divided by it)."""
    gap = WEEK_S / entries_last_week
    if config.polls_per_entry is not None:
        return gap / config.polls_per_entry
    if busy(entries_last_week, config):
        return config.min_interval_s
    return max(gap * config.target_delay_s / HOUR_S, config.target_delay_s / 2)


def busy(entries_last_week: int, config: FreshnessConfig) -> bool:
    """Polled at the minimum interval: an entry more often than every busy_gap_s(config) (7.5 min by default).

    Such a feed would be polled at half the target delay, with an entry or more in each
    interval, and a server that fails between two polls takes with it whatever the last
    interval brought once its list turns over before the server is back. At the minimum that
    is the last few minutes' entries. In the freshness benchmark's stress population this is
    the one item of 609,879 that a 5-minute poller would have read, for 11% more requests there
    and 0.5% on the Media Cloud population.
    """
    return entries_last_week > 0 and WEEK_S / entries_last_week < busy_gap_s(config)


def busy_gap_s(config: FreshnessConfig) -> float:
    """The mean gap under which a feed is busy: half the target delay, when that is at most twice the minimum
    interval (the default: 7.5 against 5 minutes), so that polling busy feeds at the minimum costs them at most
    twice the requests; 0 (no feed is busy) with a longer target, which an operator sets to send fewer
    requests."""
    half = config.target_delay_s / 2
    return half if half <= 2 * config.min_interval_s else 0.0


def window_limit_s(entries_last_week: int | None, window: int | None) -> float | None:
    """The window rule: a third of the time the feed's `window` newest entries last at its publishing rate
    (ASSUMED_WINDOW entries when unknown); None when the rate is unknown."""
    if not entries_last_week or entries_last_week <= 0:
        return None
    return (window or ASSUMED_WINDOW) * (WEEK_S / entries_last_week) * WINDOW_SHARE


def _candidate(poll: PollResult, config: FreshnessConfig) -> tuple[float, str, Rule]:
    rate: float | None = None
    rate_why = ""
    if poll.entries_last_week and (poll.entries_last_week > 1 or poll.dated_entries > 1):
        rate = rate_interval_s(poll.entries_last_week, config)
        rate_why = _rate_why(poll, poll.entries_last_week)
        if config.polls_per_entry is not None:
            rate_why += f" (MEDIABEAT_FEED_POLLS_PER_ENTRY={config.polls_per_entry:g}, deprecated)"
        elif busy(poll.entries_last_week, config):
            rate_why += f"; an entry more often than every {_human(busy_gap_s(config))}: polled at the minimum"
    elif poll.dated_entries > 1 and poll.entries_last_week == 0:
        rate = float(config.max_interval_s)
        rate_why = "publishing rate: no entry in the last week"
    previous = poll.previous_interval_s
    if rate is None and poll.links == 0 and not poll.unchanged:
        return _empty(previous, config)
    if previous is None:
        if rate is not None:
            return rate, rate_why, Rule.RATE
        why = "first fetch, one dated entry" if poll.dated_entries == 1 else "first fetch, entries undated"
        return DEFAULT_INTERVAL_S, why, Rule.FIRST
    seen_share = _seen_share(poll)
    if seen_share is not None and seen_share < SHORTEN_BELOW and not _list_grew(poll):
        shorter = min(rate if rate is not None else math.inf, previous / 2)
        seen = poll.links - poll.new_links
        return shorter, f"overlap: only {seen} of {poll.links} links seen before, polling sooner", Rule.OVERLAP_SOONER
    if rate is not None:
        return rate, rate_why, Rule.RATE
    if seen_share is not None and seen_share >= LENGTHEN_FROM:
        why = "feed unchanged" if poll.unchanged else f"overlap: {poll.links - poll.new_links} of {poll.links} links"
        return previous * 2, f"{why} seen before, polling less often", Rule.OVERLAP_LATER
    return previous, "overlap between the thirds, interval kept", Rule.KEPT


def _rate_why(poll: PollResult, week: int) -> str:
    """The rate as the user can check it: counted in the last week, measured over a younger window, or stored."""
    if poll.unchanged:
        return f"publishing rate: {week} entries a week, as last measured"
    if week > poll.dated_entries:
        return f"publishing rate: about {week} entries a week, from its {poll.dated_entries} entries of the last week"
    return f"publishing rate: {week} entries in the last week"


def _empty(previous: int | None, config: FreshnessConfig) -> tuple[float, str, Rule]:
    """A feed that lists nothing yet: polled again after the target delay (a new feed may start at once), then
    less and less often."""
    if previous is None:
        return config.target_delay_s, "no entries yet", Rule.FIRST
    return previous * 2, "no entries yet, polling less often", Rule.OVERLAP_LATER


def _list_grew(poll: PollResult) -> bool:
    """Whether the feed lists more entries than at the last parsed fetch, every one listed then still listed:
    nothing fell off it in between (a young feed filling its window)."""
    if poll.previous_window is None or poll.unchanged or poll.links <= poll.previous_window:
        return False
    return poll.links - poll.new_links >= poll.previous_window


def _seen_share(poll: PollResult) -> float | None:
    if poll.unchanged:
        return 1.0
    if poll.links <= 0:
        return None
    return (poll.links - poll.new_links) / poll.links


def failure_cap_s(entries_last_week: int | None, config: FreshnessConfig, window: int | None = None) -> float | None:
    """The longest backoff of a feed whose publishing rate is known: the interval it has when healthy (the rate
    rule), and within the window rule (its `window` entries, ASSUMED_WINDOW when unknown), never below the
    minimum. A failing feed is never asked more often than a healthy one, and once its server is back it is read
    before much of what it lists can fall off. None (no cap) when the rate is unknown or under the hourly policy."""
    if config.policy is not FeedPolicy.ADAPTIVE or not entries_last_week or entries_last_week <= 0:
        return None
    limit = window_limit_s(entries_last_week, window)
    assert limit is not None
    return max(min(rate_interval_s(entries_last_week, config), limit), float(config.min_interval_s))


def turnover_s(entries_last_week: int | None, window: int | None) -> float:
    """How long the feed's whole window lasts at its rate (inf when the rate is unknown): a feed failing longer
    than that may have pushed every entry it listed off, so once it answers again its entries fall off at its
    publishing rate, and only a retry at the minimum interval reads each before it goes."""
    if not entries_last_week or entries_last_week <= 0:
        return math.inf
    return (window or ASSUMED_WINDOW) * WEEK_S / entries_last_week


def _backoff_step_s(failure: int, config: FreshnessConfig, cap: float) -> float:
    """The rest after the `failure`-th failure in a row: 5 min doubling, at most the maximum and `cap`."""
    seconds = min(BACKOFF_FIRST_S * (1 << min(max(failure - 1, 0), 20)), config.max_interval_s, cap)
    return max(seconds, config.min_interval_s)


def _rest_s(failure: int, elapsed: float, config: FreshnessConfig, cap: float, turnover: float) -> float:
    """The rest after the `failure`-th failure, `elapsed` seconds after the first: the capped backoff step, but
    not past the moment the window has turned over, and the minimum from then on."""
    step = _backoff_step_s(failure, config, cap)
    return max(min(step, turnover - elapsed), float(config.min_interval_s))


@functools.lru_cache(maxsize=4096)
def _failing_s(failures: int, config: FreshnessConfig, cap: float, turnover: float) -> float:
    """How long the feed has failed when it fails for the `failures`-th time in a row, by its rests."""
    elapsed = 0.0
    for n in range(1, failures):
        elapsed += _rest_s(n, elapsed, config, cap, turnover)
    return elapsed


def _failing_long_enough(failures: int, config: FreshnessConfig, cap: float, turnover: float) -> bool:
    """Whether the feed has failed (by its rests) as long as `dormant_after` uncapped steps last.

    Without a cap this is `failures >= dormant_after`; a feed retried sooner because of its window turns
    dormant after the same time, not after fewer hours."""
    needed = sum(_backoff_step_s(n, config, math.inf) for n in range(1, config.dormant_after))
    return _failing_s(failures, config, cap, turnover) >= needed


def after_failure(
    failures: int,
    config: FreshnessConfig,
    *,
    retry_after_s: int | None = None,
    error: str = "",
    entries_last_week: int | None = None,
    window: int | None = None,
) -> Interval:
    """The interval after the `failures`-th failure in a row: backoff (capped by the rate and window rules when
    the feed's publishing rate is known, and at the minimum once its window may have turned over), then
    dormancy; Retry-After is a floor."""
    limit = failure_cap_s(entries_last_week, config, window)
    cap = math.inf if limit is None else limit
    turnover = math.inf if limit is None else turnover_s(entries_last_week, window)
    if limit is None:
        dormant = failures >= config.dormant_after
    else:
        dormant = _failing_long_enough(failures, config, cap, turnover)
    if dormant:
        return Interval(
            config.dormant_interval_s,
            f"dormant after {failures} failures in a row, polled every {_human(config.dormant_interval_s)}",
            dormant=True,
            rule=Rule.DORMANT,
        )
    reason = f"backoff after {failures} failure{'s' if failures != 1 else ''} in a row"
    rule = Rule.BACKOFF
    if config.policy is FeedPolicy.HOURLY:
        # The seed's backoff: the next hourly run, then 1, 2, 4 ... hours, at most a day apart.
        seconds = min(HOUR_S * (1 << min(max(failures - 2, 0), 10)), 24 * HOUR_S)
    elif limit is not None and _failing_s(failures, config, cap, turnover) >= turnover:
        seconds = config.min_interval_s
        reason += f", retried every {_human(seconds)}: it has failed longer than its entries last, so they fall off"
    else:
        elapsed = _failing_s(failures, config, cap, turnover)
        seconds = int(_rest_s(failures, elapsed, config, cap, turnover))
        if seconds < _backoff_step_s(failures, config, math.inf):
            reason += f", retried at least every {_human(min(cap, seconds))} (its publishing rate)"
    if retry_after_s is not None and retry_after_s > seconds:
        seconds = min(retry_after_s, max(config.max_interval_s, 24 * HOUR_S))
        reason, rule = f"the server asks for Retry-After {_human(retry_after_s)}", Rule.RETRY_AFTER
    return Interval(int(seconds), reason + (f": {error}" if error else ""), rule=rule)


def entries_in_last_week(dates: list[datetime], now: datetime) -> int:
    """How many of these entry dates fall in the week before `now` (future dates count as now)."""
    start = now - timedelta(seconds=WEEK_S)
    return sum(1 for d in dates if d > start)


def entries_per_week(dates: list[datetime], now: datetime) -> int:
    """The publishing rate, entries a week: those of the last week, or, when the feed's whole window is
    younger than a week (a short feed of a busy site, or a young feed), the rate since its oldest entry."""
    return entries_per_week_from_ages([(now - d).total_seconds() for d in dates])


def entries_per_week_from_ages(ages_s: Sequence[float]) -> int:
    """entries_per_week from the entries' ages in seconds before now (a future date has a negative age).

    A window younger than a week counts its entries after the oldest over the time from the oldest to now (not
    to the newest): a burst in a young feed is not taken for its rate as soon as a quiet spell follows it."""
    in_week = sum(1 for age in ages_s if age < WEEK_S)
    if len(ages_s) >= 2 and in_week == len(ages_s):
        span = max(ages_s) - min(min(ages_s), 0.0)
        if span > 0:
            return max(in_week, min(int((len(ages_s) - 1) * WEEK_S / span), 100_000))
    return in_week


def rate_after_silence(entries_last_week: int | None, window: int | None, silent_s: float) -> int | None:
    """The rate of a feed whose window was younger than a week (more entries a week than it listed), after
    `silent_s` more seconds without a new entry (a 304 or an unchanged body): the same entries over the longer
    time, as entries_per_week_from_ages would count them now. Other rates are returned as they are."""
    if entries_last_week is None or window is None or window < 2 or entries_last_week <= window or silent_s <= 0:
        return entries_last_week
    span = (window - 1) * WEEK_S / entries_last_week
    return max(window, int((window - 1) * WEEK_S / (span + silent_s)))


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
        config.max_interval_s,
        f"pushed by its WebSub hub: a backup poll every {_human(config.max_interval_s)}",
        rule=Rule.PUSHED,
    )
