"""Pure scheduling decisions: which occurrences of a task to run now, and what comes next.

Nothing here reads the clock or touches I/O: the caller passes `now` in.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from mediabeat.schedule.cron import CronSchedule

# Counting missed occurrences stops here, so a per-minute task down for a year stays cheap.
MISSED_COUNT_LIMIT = 10_000


class MisfirePolicy(enum.StrEnum):
    """What to do with occurrences that passed while no scheduler was running."""

    RUN_ONCE = "run_once"
    SKIP = "skip"
    CATCH_UP = "catch_up"


class OverlapPolicy(enum.StrEnum):
    """What to do when an occurrence comes due while the previous run is still running."""

    FORBID = "forbid"
    ALLOW = "allow"


@dataclass(frozen=True, slots=True)
class DuePlan:
    """The decision for one task at one instant.

    `run` holds the occurrences (UTC) to start now, oldest first. `missed` counts the
    occurrences that will never run, and `missed_latest` is the newest of them.
    """

    run: list[datetime] = field(default_factory=list)
    missed: int = 0
    missed_latest: datetime | None = None
    next_run_at: datetime | None = None


def initial_next_run(schedule: CronSchedule, now: datetime, *, never_ran: bool) -> datetime | None:
    """Where a task's next_run_at starts: a never-run task is due at once, at its last occurrence."""
    if never_ran:
        previous = schedule.previous_fire(now)
        if previous is not None:
            return previous.astimezone(UTC)
    upcoming = schedule.next_fire(now)
    return upcoming.astimezone(UTC) if upcoming else None


def plan_due(
    schedule: CronSchedule,
    *,
    next_run_at: datetime,
    now: datetime,
    misfire: MisfirePolicy,
    grace: timedelta,
    max_catch_up: int,
) -> DuePlan:
    """Decide which due occurrences (from next_run_at up to now) run, under the misfire policy."""
    upcoming = schedule.next_fire(now)
    following = upcoming.astimezone(UTC) if upcoming else None
    if next_run_at > now:
        return DuePlan(next_run_at=next_run_at)
    due = _occurrences_between(schedule, next_run_at, now)
    on_time = [t for t in due if now - t <= grace]
    late = [t for t in due if now - t > grace]
    if not late:
        return DuePlan(run=on_time, next_run_at=following)
    if misfire is MisfirePolicy.SKIP:
        return DuePlan(run=on_time, missed=len(late), missed_latest=late[-1], next_run_at=following)
    if misfire is MisfirePolicy.CATCH_UP:
        kept = due[-max_catch_up:]
        dropped = due[: len(due) - len(kept)]
        return DuePlan(
            run=kept,
            missed=len(dropped),
            missed_latest=dropped[-1] if dropped else None,
            next_run_at=following,
        )
    # run_once: one run stands for all of them, at the newest occurrence.
    return DuePlan(
        run=[due[-1]],
        missed=len(due) - 1,
        missed_latest=due[-2] if len(due) > 1 else None,
        next_run_at=following,
    )


def _occurrences_between(schedule: CronSchedule, first: datetime, now: datetime) -> list[datetime]:
    """`first` and every later fire time up to and including `now` (UTC), at most the newest MISSED_COUNT_LIMIT.

    The newest are the ones that matter: run_once runs the newest, catch_up the newest
    few, skip those within the grace. Past the limit the older ones are neither listed
    nor counted.
    """
    found = [first]
    for fire in schedule.fire_times(first):
        if fire > now:
            return found
        if len(found) >= MISSED_COUNT_LIMIT:
            break
        found.append(fire.astimezone(UTC))
    newest = itertools.islice(schedule.fire_times_back(now), MISSED_COUNT_LIMIT)
    return sorted(fire.astimezone(UTC) for fire in newest if fire >= first)


def plan_given_back(
    scheduled: list[datetime], *, now: datetime, misfire: MisfirePolicy, grace: timedelta
) -> tuple[list[datetime], list[datetime]]:
    """Which claimed occurrences of one task that no node started (given back) run now, and which are skipped.

    Those still within the grace run. Late ones follow the misfire policy, as if they had just
    come due: `skip` skips them, `catch_up` runs them all, `run_once` runs the newest occurrence
    once for all of them. Returns (run, skipped), each oldest first.
    """
    ordered = sorted(scheduled)
    late = [t for t in ordered if now - t > grace]
    on_time = [t for t in ordered if now - t <= grace]
    if not late or misfire is MisfirePolicy.CATCH_UP:
        return ordered, []
    if misfire is MisfirePolicy.SKIP:
        return on_time, late
    return [ordered[-1]], ordered[:-1]  # run_once


def overlap_allows(policy: OverlapPolicy, running: int) -> bool:
    """Whether a new run may start while `running` runs of the same task are in flight."""
    return policy is OverlapPolicy.ALLOW or running == 0
