"""Freshness benchmark: publication-to-crawl-job delay, missed items and requests, per polling policy.

    .venv/bin/python bench/freshness_bench.py [--feeds 2000] [--days 7] [--seed 1]

A simulated population on a simulated clock (no HTTP: the interval maths is the pure module
src/mediabeat/schedule/freshness.py, the same code hourly-rss-fetch runs). Each feed publishes
by a Poisson process whose rate is log-uniform between one item every 5 minutes and one a
month, with bursts (3-8 items within 10 minutes); a feed shows its newest 20-50 items, so an
item that falls off before a poll sees it is missed. 5% of the feeds fail for a day and come
back; 5% lie with an unchanged ETag (every policy here reads a 200's body, so they cost nothing
extra; a policy trusting the ETag would miss them); 10% are behind a WebSub hub, which only
MediaBeat's "with push" row uses (a push lands 2 s after publication; a backup poll stays at
the maximum interval).

Policies, measured on the same items in the same run:
- fixed hourly: every feed at each hour (the seed's schedule, its 1, 1, 2, 4 h backoff);
- Miniflux: entry_frequency = a week / the entries seen in the last week, clamped to 5 min .. 24 h;
- MediaBeat adaptive: freshness.after_success / after_failure with the default settings.

A crawl job exists when a poll sees the item, so the delay is (first successful poll that
lists it) - (publication). Publishing stops after `--days`; polling goes on one more day so
that late items are counted, not dropped.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from mediabeat.schedule.freshness import (
    HOUR_S,
    FeedPolicy,
    FreshnessConfig,
    PollResult,
    after_failure,
    after_success,
    entries_per_week,
)

EPOCH = datetime(2026, 1, 5, tzinfo=UTC)
DAY = 86400
PUSH_DELAY_S = 2.0


@dataclass
class Feed:
    times: list[float]  # publication times, seconds from the start, ascending
    window: int
    rate_per_hour: float
    fails: tuple[float, float] | None = None
    pushed: bool = False
    lying: bool = False


@dataclass
class Tally:
    delays: list[float] = field(default_factory=list)
    fast_delays: list[float] = field(default_factory=list)  # feeds publishing at least hourly
    missed: int = 0
    requests: int = 0


def population(count: int, days: int, rng: random.Random) -> list[Feed]:
    feeds = []
    low, high = math.log(1 / (30 * DAY)), math.log(1 / 300)
    horizon = days * DAY
    for _ in range(count):
        rate = math.exp(rng.uniform(low, high))  # items per second
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
        feeds.append(
            Feed(
                times=times,
                window=rng.randint(20, 50),
                rate_per_hour=rate * HOUR_S,
                fails=fails,
                pushed=rng.random() < 0.10,
                lying=rng.random() < 0.05,
            )
        )
    return feeds


class Poller:
    """One feed under one policy: what it has seen, its interval, its failures."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.seen = 0  # items [0, seen) with time <= start are the history, seen before the run
        self.interval: int | None = None
        self.failures = 0
        first = bisect.bisect_right(feed.times, 0.0)
        self.seen = first

    def poll(self, t: float, tally: Tally, fast: bool) -> tuple[bool, list[float], int, int]:
        """Poll at t: (ok, visible dates, links, new links); records delays and misses."""
        tally.requests += 1
        feed = self.feed
        if feed.fails and feed.fails[0] <= t < feed.fails[1]:
            return False, [], 0, 0
        end = bisect.bisect_right(feed.times, t)
        start = max(0, end - feed.window)
        if self.seen < start:
            tally.missed += start - self.seen
            self.seen = start
        new = end - self.seen
        for published in feed.times[self.seen : end]:
            tally.delays.append(t - published)
            if fast:
                tally.fast_delays.append(t - published)
        self.seen = end
        return True, feed.times[start:end], end - start, new


Policy = Callable[[Poller, float, bool, list[float], int, int], float]


def hourly(p: Poller, t: float, ok: bool, dates: list[float], links: int, new: int) -> float:
    if not ok:
        p.failures += 1
        wait = after_failure(p.failures, FreshnessConfig(policy=FeedPolicy.HOURLY, dormant_after=10**6)).seconds
    else:
        p.failures, wait = 0, HOUR_S
    return (math.floor(t / HOUR_S) * HOUR_S) + max(HOUR_S, wait)  # the next :00 at or after the wait


def miniflux(p: Poller, t: float, ok: bool, dates: list[float], links: int, new: int) -> float:
    times = p.feed.times  # the entries stored (seen) that were published in the last week:
    week = max(0, p.seen - bisect.bisect_right(times, t - 7 * DAY, 0, p.seen))
    interval = 24 * HOUR_S if week == 0 else min(max(7 * DAY // week, 300), 24 * HOUR_S)
    return t + interval


def mediabeat(config: FreshnessConfig) -> Policy:
    def decide(p: Poller, t: float, ok: bool, dates: list[float], links: int, new: int) -> float:
        if not ok:
            p.failures += 1
            step = after_failure(p.failures, config)
            return t + step.seconds
        previous = p.interval if p.failures == 0 else None
        p.failures = 0
        now = EPOCH + timedelta(seconds=t)
        stamps = [_stamp(d) for d in dates]
        week = entries_per_week(stamps, now) if stamps else None
        poll = PollResult(
            previous_interval_s=previous,
            entries_last_week=week,
            dated_entries=len(stamps),
            links=links,
            new_links=new,
            unchanged=new == 0,
        )
        p.interval = after_success(poll, config).seconds
        return t + p.interval

    return decide


_STAMPS: dict[float, datetime] = {}


def _stamp(seconds: float) -> datetime:
    """A publication time as a datetime (the pure module's input), built once per item."""
    stamp = _STAMPS.get(seconds)
    if stamp is None:
        stamp = _STAMPS[seconds] = EPOCH + timedelta(seconds=seconds)
    return stamp


def simulate(feeds: list[Feed], policy: Policy, days: int, *, push: bool, rng: random.Random) -> Tally:
    tally = Tally()
    horizon = (days + 1) * DAY
    queue: list[tuple[float, int]] = []
    pollers = [Poller(f) for f in feeds]
    for i, feed in enumerate(feeds):
        fast = feed.rate_per_hour >= 1
        if push and feed.pushed:
            for published in feed.times:
                if published >= 0:
                    tally.delays.append(PUSH_DELAY_S)
                    if fast:
                        tally.fast_delays.append(PUSH_DELAY_S)
            pollers[i].seen = len(feed.times)
            tally.requests += days + 1  # the backup poll, once a day
            continue
        heapq.heappush(queue, (rng.uniform(0, 60), i))  # added at start-up, first fetched within a minute
    while queue:
        t, i = heapq.heappop(queue)
        if t > horizon:
            continue
        poller = pollers[i]
        ok, dates, links, new = poller.poll(t, tally, poller.feed.rate_per_hour >= 1)
        nxt = policy(poller, t, ok, dates, links, new)
        heapq.heappush(queue, (max(nxt, t + 1), i))
    for poller in pollers:  # never seen by the end: missed
        tally.missed += max(0, len(poller.feed.times) - poller.seen)
    return tally


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _fmt(seconds: float) -> str:
    if seconds != seconds:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * HOUR_S:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / HOUR_S:.1f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--polls-per-entry",
        type=float,
        nargs="*",
        default=[],
        help="Also measure MediaBeat with these MEDIABEAT_FEED_POLLS_PER_ENTRY values (default setting: 6)",
    )
    args = parser.parse_args()
    feeds = population(args.feeds, args.days, random.Random(args.seed))
    items = sum(1 for f in feeds for t in f.times if t >= 0)
    fast = sum(1 for f in feeds if f.rate_per_hour >= 1)
    print(
        f"{args.feeds} feeds ({fast} publishing at least hourly, {sum(f.pushed for f in feeds)} behind a hub, "
        f"{sum(f.fails is not None for f in feeds)} failing for a day, {sum(f.lying for f in feeds)} with lying "
        f"ETags), {items} items over {args.days} simulated days"
    )
    config = FreshnessConfig()
    rows = [
        ("fixed hourly", hourly, False),
        ("Miniflux entry_frequency", miniflux, False),
        ("MediaBeat adaptive (poll only)", mediabeat(config), False),
        ("MediaBeat adaptive + push", mediabeat(config), True),
    ]
    for value in args.polls_per_entry:
        rows.append((f"MediaBeat, polls_per_entry={value:g}", mediabeat(FreshnessConfig(polls_per_entry=value)), False))
    header = (
        f"{'policy':32} {'p50':>9} {'p95':>9} {'max':>9} {'≥hourly p50':>12} {'≥hourly p95':>12} "
        f"{'missed':>7} {'requests/day':>13}"
    )
    print(header)
    print("-" * len(header))
    for name, policy, push in rows:
        tally = simulate(feeds, policy, args.days, push=push, rng=random.Random(args.seed + 1))
        print(
            f"{name:32} {_fmt(statistics.median(tally.delays)):>9} {_fmt(_pct(tally.delays, 0.95)):>9} "
            f"{_fmt(max(tally.delays)):>9} {_fmt(_pct(tally.fast_delays, 0.5)):>12} "
            f"{_fmt(_pct(tally.fast_delays, 0.95)):>12} {tally.missed:>7} {tally.requests / (args.days + 1):>13,.0f}"
        )


if __name__ == "__main__":
    main()
