"""Freshness benchmark: publication-to-crawl-job delay, missed items and requests, per polling policy.

    .venv/bin/python bench/freshness_bench.py [--population media-cloud|stress|both] [--feeds 2000] [--days 7]
        [--seed 1] [--target-delay SECONDS ...] [--no-compare] [--worst N]

Beside the table: requests a day per policy by the feed's true rate band and by the rule that scheduled them
(freshness.Rule), the frontier (MediaBeat at the default and each --target-delay against Miniflux), and with
--worst the default's largest delays and catchable misses, item by item.

A simulated population on a simulated clock (no HTTP: the interval maths is the pure module
src/mediabeat/schedule/freshness.py, the same code hourly-rss-fetch runs). Each feed publishes
by a Poisson process, with bursts (5%: 3-8 items within 10 minutes); a feed shows its newest
20-50 items, so an item that falls off before a poll sees it is missed. 5% of the feeds fail
for a day and come back; 5% lie with an unchanged ETag (every policy here reads a 200's body, so
they cost nothing extra; a policy trusting the ETag would miss them); 10% are behind a WebSub
hub, which only MediaBeat's "with push" row uses (a push lands 2 s after publication; a backup
poll stays at the maximum interval).

Two populations, both measured by default:
- media-cloud (the default): rates log-normal (sigma 1.6 in ln), clipped to one item every
  5 minutes .. one a month, centred so that a feed publishes 2.8 items a day on average, bursts
  included: Media Cloud's fleet (about 180,000 feeds, 500,000 stories a day);
- stress: rates log-uniform over the same range (about 32 items a feed a day, 11 times Media
  Cloud's mean), the population of the first measurements; same seed, same items as then.

Policies, measured on the same items in the same run:
- fixed hourly: every feed at each hour (the seed's schedule, its 1, 1, 2, 4 h backoff);
- Miniflux: entry_frequency = a week / the entries seen in the last week, clamped to 5 min .. 24 h;
- MediaBeat adaptive: freshness.after_success / after_failure with the default settings; for
  comparison the deprecated rule (MEDIABEAT_FEED_POLLS_PER_ENTRY=6) and square-root allocation.

A crawl job exists when a poll sees the item, so the delay is (first successful poll that
lists it) - (publication). Publishing stops after `--days`; polling goes on one more day so
that late items are counted, not dropped. A missed item is "catchable" when it was in the
feed's window for at least 5 minutes in one stretch while the server answered, so that a poller
polling at the 5-minute minimum would have seen it (an oracle over the whole run says so), and
"lost" otherwise: published and pushed off the window while the server was failing, or listed
for under 5 minutes after it came back. No poller bounded by the minimum can be sure to see those.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import math
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from mediabeat.schedule import freshness
from mediabeat.schedule.freshness import (
    HOUR_S,
    WEEK_S,
    FeedPolicy,
    FreshnessConfig,
    PollResult,
    after_failure,
    after_success,
    entries_per_week_from_ages,
    rate_after_silence,
)

DAY = 86400
PUSH_DELAY_S = 2.0
MIN_VISIBLE_S = 300.0  # an item listed this long while the server answers is seen by a 5-minute poller
MIN_RATE, MAX_RATE = 1 / (30 * DAY), 1 / 300  # items per second: one a month .. one every 5 minutes
# Media Cloud's fleet: log-normal rates, sigma 1.6 (ln), median gap 38.9 h, which with the clipping and
# the bursts gives 2.8 items a feed a day (solved numerically; the run prints the mean it got).
LOGNORMAL_SIGMA = 1.6
LOGNORMAL_MEDIAN_GAP_S = 38.9 * HOUR_S


@dataclass
class Feed:
    times: list[float]  # publication times, seconds from the start, ascending
    window: int
    rate_per_hour: float
    fails: tuple[float, float] | None = None
    pushed: bool = False
    lying: bool = False
    lost: set[int] = field(default_factory=set)  # items no poller could see (oracle)


BANDS = ("≥hourly", "hourly..daily", "daily..weekly", "<weekly")


def band(rate_per_hour: float) -> str:
    """The feed's publishing-rate band (its true rate in the simulation)."""
    if rate_per_hour >= 1:
        return BANDS[0]
    if rate_per_hour >= 1 / 24:
        return BANDS[1]
    return BANDS[2] if rate_per_hour >= 1 / 168 else BANDS[3]


@dataclass
class Tally:
    delays: list[float] = field(default_factory=list)
    fast_delays: list[float] = field(default_factory=list)  # feeds publishing at least hourly
    missed_catchable: int = 0
    missed_lost: int = 0
    requests: int = 0
    # The breakdown: requests by the rule of the interval that scheduled them, and by the feed's rate band;
    # delays and feeds by band.
    by_rule: Counter[str] = field(default_factory=Counter)
    by_band: Counter[str] = field(default_factory=Counter)
    band_delays: dict[str, list[float]] = field(default_factory=lambda: {b: [] for b in BANDS})
    band_feeds: Counter[str] = field(default_factory=Counter)
    worst: list[tuple[float, int, float]] = field(default_factory=list)  # (delay, feed index, publication)
    catchable: list[tuple[int, float]] = field(default_factory=list)  # (feed index, publication) missed


def _rate(kind: str, rng: random.Random) -> float:
    if kind == "stress":
        return math.exp(rng.uniform(math.log(MIN_RATE), math.log(MAX_RATE)))
    rate = math.exp(rng.gauss(math.log(1 / LOGNORMAL_MEDIAN_GAP_S), LOGNORMAL_SIGMA))
    return min(max(rate, MIN_RATE), MAX_RATE)


def population(count: int, days: int, rng: random.Random, kind: str = "stress") -> list[Feed]:
    feeds = []
    horizon = days * DAY
    for _ in range(count):
        rate = _rate(kind, rng)  # items per second
        times: list[float] = []
        t = rng.uniform(-7 * DAY, 0) if rng.random() < 0.5 else 0.0  # some history before the start
        while True:
            t += rng.expovariate(rate)
            if t >= horizon:
                break
            if rng.random() < 0.05:  # a burst
                times.extend(t + rng.uniform(0, 600) for _ in range(rng.randint(3, 8)))
            times.append(t)
        times = sorted(x for x in times if x < horizon)
        fails = None
        if rng.random() < 0.05:
            start = rng.uniform(0, horizon - DAY)
            fails = (start, start + DAY)
        feed = Feed(
            times=times,
            window=rng.randint(20, 50),
            rate_per_hour=rate * HOUR_S,
            fails=fails,
            pushed=rng.random() < 0.10,
            lying=rng.random() < 0.05,
        )
        feed.lost = _lost(feed, (days + 1) * DAY)
        feeds.append(feed)
    return feeds


def _lost(feed: Feed, horizon: float) -> set[int]:
    """The oracle: items no poller could be sure to see. An item is listed from its publication until the
    window's-th newer item pushes it off; it is catchable when, for at least the minimum interval (5 min,
    the shortest rest any policy here takes) in one stretch, the server answered while it was listed (a
    poller polling every 5 minutes sees it). Lost items were published and pushed off while the server was
    failing (or listed for under 5 minutes while it answered)."""
    down, up = feed.fails if feed.fails else (math.inf, math.inf)
    times, lost = feed.times, set()
    for i in range(bisect.bisect_left(times, 0.0), len(times)):
        listed, leaves = times[i], min(times[i + feed.window] if i + feed.window < len(times) else math.inf, horizon)
        before = min(leaves, down) - listed
        after = leaves - max(listed, up)
        if max(before, after) < MIN_VISIBLE_S:
            lost.add(i)
    return lost


class Poller:
    """One feed under one policy: what it has seen, its interval, its failures."""

    def __init__(self, feed: Feed, index: int = 0, log: list[tuple[float, str]] | None = None) -> None:
        self.feed = feed
        self.index = index
        self.log = log  # (time, rule) of each poll, when tracing one feed
        self.seen = bisect.bisect_right(feed.times, 0.0)  # [0, seen): the history, seen before the run
        self.interval: int | None = None
        self.failures = 0
        self.week: int | None = None  # entries a week at the last parsed fetch (stored by the product)
        self.window: int | None = None  # entries listed at the last parsed fetch (feeds.window_entries)
        self.last_poll = 0.0
        self.rule = "start"  # the rule of the interval that scheduled the next poll (the breakdown)
        self.band = band(feed.rate_per_hour)

    def poll(self, t: float, tally: Tally, fast: bool) -> tuple[bool, list[float], int, int]:
        """Poll at t: (ok, visible dates, links, new links); records delays and misses."""
        tally.requests += 1
        if self.log is not None:
            self.log.append((t, self.rule))
        tally.by_rule[self.rule] += 1
        tally.by_band[self.band] += 1
        feed = self.feed
        if feed.fails and feed.fails[0] <= t < feed.fails[1]:
            return False, [], 0, 0
        end = bisect.bisect_right(feed.times, t)
        start = max(0, end - feed.window)
        if self.seen < start:
            self._miss(self.seen, start, tally)
            self.seen = start
        new = end - self.seen
        delays = tally.band_delays[self.band]
        for published in feed.times[self.seen : end]:
            tally.delays.append(t - published)
            delays.append(t - published)
            if fast:
                tally.fast_delays.append(t - published)
            if t - published > 24 * HOUR_S:
                tally.worst.append((t - published, self.index, published))
        self.seen = end
        return True, feed.times[start:end], end - start, new

    def _miss(self, first: int, end: int, tally: Tally) -> None:
        lost = sum(1 for i in range(first, end) if i in self.feed.lost) if self.feed.lost else 0
        tally.missed_lost += lost
        tally.missed_catchable += end - first - lost
        tally.catchable += [(self.index, self.feed.times[i]) for i in range(first, end) if i not in self.feed.lost]


Policy = Callable[[Poller, float, bool, list[float], int, int], float]


def hourly(p: Poller, t: float, ok: bool, dates: list[float], links: int, new: int) -> float:
    if not ok:
        p.failures += 1
        wait = after_failure(p.failures, FreshnessConfig(policy=FeedPolicy.HOURLY, dormant_after=10**6)).seconds
    else:
        p.failures, wait = 0, HOUR_S
    p.rule = "fixed hourly" if ok else "backoff"
    return (math.floor(t / HOUR_S) * HOUR_S) + max(HOUR_S, wait)  # the next :00 at or after the wait


def miniflux(p: Poller, t: float, ok: bool, dates: list[float], links: int, new: int) -> float:
    times = p.feed.times  # the entries stored (seen) that were published in the last week:
    week = max(0, p.seen - bisect.bisect_right(times, t - 7 * DAY, 0, p.seen))
    interval = 24 * HOUR_S if week == 0 else min(max(7 * DAY // week, 300), 24 * HOUR_S)
    p.rule = "maximum" if interval == 24 * HOUR_S else "minimum" if interval == 300 else "rate"
    return t + interval


def mediabeat(config: FreshnessConfig) -> Policy:
    def decide(p: Poller, t: float, ok: bool, dates: list[float], links: int, new: int) -> float:
        if not ok:
            p.failures += 1
            failed = after_failure(p.failures, config, entries_last_week=p.week, window=p.window)
            p.rule = failed.rule.value
            return t + failed.seconds
        previous = p.interval if p.failures == 0 else None
        p.failures = 0
        if new == 0 and previous is not None:  # the same body as last time: not parsed (rss_fetch)
            p.week = rate_after_silence(p.week, p.window, t - p.last_poll)  # stored back, as rss_fetch does
            poll = PollResult(
                previous_interval_s=previous,
                entries_last_week=p.week,
                dated_entries=1 if p.week is not None else 0,
                unchanged=True,
                previous_window=p.window,
            )
        else:
            p.week = entries_per_week_from_ages([t - d for d in dates]) if dates else None
            poll = PollResult(
                previous_interval_s=previous,
                entries_last_week=p.week,
                dated_entries=len(dates),
                links=links,
                new_links=new,
                previous_window=p.window,
            )
            p.window = links
        interval = after_success(poll, config)
        p.interval, p.rule, p.last_poll = interval.seconds, interval.rule.value, t
        if interval.rule == "rate" and dates and new and _young(t, dates):
            p.rule = "rate (young window)"
        return t + p.interval

    return decide


def _young(t: float, dates: list[float]) -> bool:
    """Whether the rate came from a window younger than a week (entries_per_week_from_ages extrapolates)."""
    return len(dates) >= 2 and t - dates[0] < WEEK_S


@contextlib.contextmanager
def square_root_rule(config: FreshnessConfig) -> Iterator[None]:
    """Square-root allocation (Cho & Garcia-Molina) in place of the rate rule, for comparison: a feed
    publishing hourly polled every target delay, others in proportion to the square root of their gap."""
    original = freshness.rate_interval_s

    def rule(entries_last_week: int, _config: FreshnessConfig) -> float:
        return config.target_delay_s * math.sqrt(WEEK_S / entries_last_week / HOUR_S)

    freshness.rate_interval_s = rule
    try:
        yield
    finally:
        freshness.rate_interval_s = original


def simulate(
    feeds: list[Feed],
    policy: Policy,
    days: int,
    *,
    push: bool,
    rng: random.Random,
    trace: dict[int, list[tuple[float, str]]] | None = None,
) -> Tally:
    """Each feed on its own (no feed waits for another), in the order the old event queue drew them. The polls
    of the feeds in `trace` are logged there."""
    tally = Tally()
    horizon = (days + 1) * DAY
    for index, feed in enumerate(feeds):
        poller = Poller(feed, index, trace.get(index) if trace is not None else None)
        fast = feed.rate_per_hour >= 1
        tally.band_feeds[poller.band] += 1
        if push and feed.pushed:
            for published in feed.times:
                if published >= 0:
                    tally.delays.append(PUSH_DELAY_S)
                    tally.band_delays[poller.band].append(PUSH_DELAY_S)
                    if fast:
                        tally.fast_delays.append(PUSH_DELAY_S)
            tally.requests += days + 1  # the backup poll, once a day
            tally.by_rule["pushed"] += days + 1
            tally.by_band[poller.band] += days + 1
            continue
        t = rng.uniform(0, 60)  # added at start-up, first fetched within a minute
        while t <= horizon:
            ok, dates, links, new = poller.poll(t, tally, fast)
            t = max(policy(poller, t, ok, dates, links, new), t + 1)
        poller._miss(poller.seen, len(feed.times), tally)  # never seen by the end: missed
    return tally


def _pct(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _fmt(seconds: float) -> str:
    if seconds != seconds:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * HOUR_S:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / HOUR_S:.1f} h"


HEADER = (
    f"{'policy':36} {'p50':>9} {'p95':>9} {'max':>9} {'≥hourly p50':>12} {'≥hourly p95':>12} "
    f"{'missed catchable':>17} {'lost':>6} {'requests/day':>13}"
)


def _row(name: str, tally: Tally, days: int) -> str:
    delays, fast = sorted(tally.delays), sorted(tally.fast_delays)
    return (
        f"{name:36} {_fmt(statistics.median(delays)):>9} {_fmt(_pct(delays, 0.95)):>9} "
        f"{_fmt(delays[-1]):>9} {_fmt(_pct(fast, 0.5)):>12} {_fmt(_pct(fast, 0.95)):>12} "
        f"{tally.missed_catchable:>17,} {tally.missed_lost:>6,} {tally.requests / (days + 1):>13,.0f}"
    )


def _breakdown(name: str, tally: Tally, days: int) -> list[str]:
    """Requests a day by band (with the band's feeds, items and p95) and by the rule that scheduled them."""
    per_day = days + 1
    bands = []
    for b in BANDS:
        delays = sorted(tally.band_delays[b])
        bands.append(
            f"{b} {tally.by_band[b] / per_day:,.0f} ({tally.band_feeds[b]} feeds, {len(delays):,} items, "
            f"p95 {_fmt(_pct(delays, 0.95))})"
        )
    rules = ", ".join(f"{r} {n / per_day:,.0f}" for r, n in tally.by_rule.most_common())
    return [f"  {name}", f"    requests/day by band: {'; '.join(bands)}", f"    by rule: {rules}"]


def explain(feeds: list[Feed], tally: Tally, trace: dict[int, list[tuple[float, str]]], worst: int) -> None:
    """The `--worst N` largest delays and the first N catchable misses, item by item: the feed, and its polls
    (time, the rule that scheduled each) around the item's publication."""
    cases = [(f"delay {_fmt(d)}", i, t, d) for d, i, t in sorted(tally.worst, reverse=True)[:worst]]
    cases += [("missed", i, t, 0.0) for i, t in tally.catchable[:worst]]
    for what, index, published, delay in cases:
        feed = feeds[index]
        fails = f"fails {feed.fails[0] / HOUR_S:.1f} h .. {feed.fails[1] / HOUR_S:.1f} h" if feed.fails else ""
        first = bisect.bisect_right(feed.times, 0.0)
        print(
            f"  {what}: feed {index} ({feed.rate_per_hour:.3g} items/h, window {feed.window}, "
            f"{len(feed.times) - first} items in the run, {first} before) {fails}; published {published / HOUR_S:.2f} h"
        )
        polls = trace[index]
        times = [t for t, _ in polls]
        at = bisect.bisect_left(times, published)
        near = polls[max(0, at - 2) : at + 2]
        print("    polls: " + ", ".join(f"{t / HOUR_S:.2f} h ({rule})" for t, rule in near))
        if delay:  # and the polls up to the one that read it
            seen = bisect.bisect_left(times, published + delay - 1)
            later = polls[max(at + 2, seen - 2) : seen + 1]
            print("    ... " + ", ".join(f"{t / HOUR_S:.2f} h ({rule})" for t, rule in later))


def _rows(targets: list[float], compare: bool) -> list[tuple[str, Policy, bool, FreshnessConfig | None]]:
    config = FreshnessConfig()
    rows: list[tuple[str, Policy, bool, FreshnessConfig | None]] = [
        ("fixed hourly", hourly, False, None),
        ("Miniflux entry_frequency", miniflux, False, None),
        ("MediaBeat adaptive (poll only)", mediabeat(config), False, None),
        ("MediaBeat adaptive + push", mediabeat(config), True, None),
    ]
    if compare:
        old = FreshnessConfig(polls_per_entry=6)
        rows.append(("MediaBeat, polls_per_entry=6 (old)", mediabeat(old), False, None))
        rows.append(("MediaBeat, square-root rate rule", mediabeat(config), False, config))
    for value in targets:
        other = FreshnessConfig(target_delay_s=int(value))
        rows.append((f"MediaBeat, target delay {value:g} s", mediabeat(other), False, None))
    return rows


def run(kind: str, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    feeds = population(args.feeds, args.days, random.Random(args.seed), kind)
    items = sum(1 for f in feeds for t in f.times if t >= 0)
    fast = sum(1 for f in feeds if f.rate_per_hour >= 1)
    lost = sum(len(f.lost) for f in feeds)
    print(
        f"\npopulation {kind}: {args.feeds} feeds ({fast} publishing at least hourly, "
        f"{sum(f.pushed for f in feeds)} behind a hub, {sum(f.fails is not None for f in feeds)} failing for a "
        f"day, {sum(f.lying for f in feeds)} with lying ETags), {items:,} items over {args.days} simulated days "
        f"({items / args.feeds / args.days:.1f} a feed a day), {lost:,} of them lost while their server failed"
    )
    print(HEADER)
    print("-" * len(HEADER))
    details: list[str] = []
    results: dict[str, Tally] = {}
    for name, policy, push, sqrt_config in _rows(args.target_delay, not args.no_compare):
        rule = square_root_rule(sqrt_config) if sqrt_config else contextlib.nullcontext()
        explained = args.worst and name == "MediaBeat adaptive (poll only)"
        trace: dict[int, list[tuple[float, str]]] | None = {i: [] for i in range(len(feeds))} if explained else None
        with rule:
            tally = simulate(feeds, policy, args.days, push=push, rng=random.Random(args.seed + 1), trace=trace)
        print(_row(name, tally, args.days), flush=True)
        details += _breakdown(name, tally, args.days)
        results[name] = tally
        if trace is not None:
            explain(feeds, tally, trace, args.worst)
    print(
        "\n".join(["breakdown (requests/day by the feed's true rate band, and by the rule of the interval", *details])
    )
    print("\n".join(frontier(results, args.days)))
    print(f"({time.perf_counter() - started:.0f} s)")


def frontier(results: dict[str, Tally], days: int) -> list[str]:
    """MediaBeat's settings (the default and each --target-delay) against Miniflux: which reach a p95 at least
    as good with fewer requests a day."""
    base = results["Miniflux entry_frequency"]
    p95 = _pct(sorted(base.delays), 0.95)
    lines = [f"against Miniflux (p95 {_fmt(p95)}, {base.requests / (days + 1):,.0f} requests/day):"]
    better: list[str] = []
    for name, tally in results.items():
        if not name.startswith("MediaBeat") or "push" in name or "old" in name or "square" in name:
            continue
        mine = _pct(sorted(tally.delays), 0.95)
        share = tally.requests / base.requests
        wins = mine <= p95 and tally.requests < base.requests
        if wins:
            better.append(name)
        lines.append(
            f"  {name}: p95 {_fmt(mine)}, {share:.2f}x the requests, "
            f"{tally.missed_catchable:,} catchable missed (Miniflux {base.missed_catchable:,}): "
            + ("p95 as good or better with fewer requests" if wins else "not both")
        )
    default = "MediaBeat adaptive (poll only)" in better
    reached = ", ".join(better) if better else "no setting measured"
    lines.append(f"  reached by: {reached}; the default: {'yes' if default else 'no'}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--population", choices=["media-cloud", "stress", "both"], default="both")
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--target-delay",
        type=float,
        nargs="*",
        default=[1800, 3600, 7200, 14400],
        help="Also measure MediaBeat with these MEDIABEAT_FEED_TARGET_DELAY values, in seconds (the default setting "
        "is 900 and always measured; these make the frontier against Miniflux; none: leave them out)",
    )
    parser.add_argument("--no-compare", action="store_true", help="Leave out the old and square-root rules")
    parser.add_argument(
        "--worst", type=int, default=0, help="Explain the default's N largest delays and first N catchable misses"
    )
    args = parser.parse_args()
    if args.feeds < 1 or args.days < 1:
        parser.error("--feeds and --days must be at least 1")
    kinds = ["media-cloud", "stress"] if args.population == "both" else [args.population]
    for kind in kinds:
        run(kind, args)


if __name__ == "__main__":
    main()
