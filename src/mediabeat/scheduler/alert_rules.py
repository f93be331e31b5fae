"""Which alerts a task's rules call for: pure decisions, the time passed in. No I/O, no clock reads.

`run_alert` decides at the end of a run (failure after N in a row, recovery); `alerts_due`
is the periodic check (late, missing, slow). Both return what to send; scheduler/task_alerting.py
records each (a unique row, so two nodes never both send it) and sends it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mediabeat.domain.scheduler import FAILURE_STATUSES, RunRecord, RunStatus, TaskRecord, Trigger
from mediabeat.domain.task_alerts import AlertKind, AlertRules, TaskAlertRecord
from mediabeat.schedule.cron import CronSchedule

# The periodic check reads this many of a task's newest runs, and looks back at most LOOKBACK.
RUN_WINDOW = 50
LOOKBACK = timedelta(days=7)
# Occurrences examined per check, newest first: a per-minute task stays cheap.
MAX_OCCURRENCES = 500
# Runs examined by the slow rule (running ones and the newest finished).
SLOW_WINDOW = 10
# The p95 rule needs this many earlier succeeded runs to compare with.
MIN_P95_SAMPLES = 5
# Statuses that neither break nor extend a failure streak.
NEUTRAL_STATUSES = frozenset({RunStatus.SKIPPED, RunStatus.CANCELLED, RunStatus.RUNNING, RunStatus.QUEUED})


@dataclass(frozen=True, slots=True)
class DueAlert:
    """An alert to record and send: its kind, its key (unique per task and kind) and what to say."""

    kind: AlertKind
    key: str
    summary: str
    run: RunRecord | None = None
    occurrence: datetime | None = None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SentAlerts:
    """What a task's rules already raised, as far as the decisions need it."""

    open_failure: bool = False  # the last failure/recovery alert was a failure
    last_late: datetime | None = None  # the occurrence of the newest late alert
    last_missing: datetime | None = None  # the newest occurrence a missing alert reported
    slow_run_ids: frozenset[int] = frozenset()

    @classmethod
    def of(cls, alerts: Iterable[TaskAlertRecord]) -> SentAlerts:
        """From a task's recent alerts, newest first."""
        ordered = list(alerts)
        outcome = next((a.kind for a in ordered if a.kind in (AlertKind.FAILURE, AlertKind.RECOVERY)), None)
        late = next((a.occurrence for a in ordered if a.kind is AlertKind.LATE), None)
        missing = next((a.occurrence for a in ordered if a.kind is AlertKind.MISSING), None)
        slow = frozenset(a.run_id for a in ordered if a.kind is AlertKind.SLOW and a.run_id is not None)
        return cls(outcome is AlertKind.FAILURE, late, missing, slow)


def streak_key(history: Sequence[RunRecord]) -> str:
    """The key of the failure alert for the streak `history` (newest first) ends in: the run that ended the
    streak before it (the newest run that was neither a failure nor neutral), so that two runs failing at
    once, each seeing the streak reach the rule, claim one alert between them."""
    retried = {run.retry_of for run in history if run.retry_of is not None}
    for run in history:
        if run.id in retried or run.status in NEUTRAL_STATUSES or run.status in FAILURE_STATUSES:
            continue
        return f"streak-after:{run.id}"
    # No run before the streak in sight: the oldest run read stands for its start.
    return f"streak-from:{history[-1].id}" if history else "streak-from:start"


def failure_streak(history: Sequence[RunRecord]) -> int:
    """How many occurrences in a row failed, newest first; a retried run counts through its last attempt.

    Skipped, cancelled and running runs neither break nor extend the streak.
    """
    retried: set[int] = set()
    streak = 0
    for run in history:
        if run.retry_of is not None:
            retried.add(run.retry_of)
        if run.id in retried or run.status in NEUTRAL_STATUSES:
            continue
        if run.status not in FAILURE_STATUSES:
            break
        streak += 1
    return streak


def run_alert(run: RunRecord, history: Sequence[RunRecord], rules: AlertRules, sent: SentAlerts) -> AlertKind | None:
    """The alert a finished run (its last attempt) calls for: `history` is the task's runs up to it, newest first."""
    if run.status in FAILURE_STATUSES:
        if sent.open_failure:
            return None
        return AlertKind.FAILURE if failure_streak(history) >= rules.after_failures else None
    if run.status is RunStatus.SUCCEEDED and sent.open_failure:
        return AlertKind.RECOVERY
    return None


def alerts_due(
    task: TaskRecord,
    schedule: CronSchedule,
    rules: AlertRules,
    runs: Sequence[RunRecord],
    now: datetime,
    *,
    sent: SentAlerts,
    quiet_before: datetime | None = None,
) -> list[DueAlert]:
    """The late, missing and slow alerts `task` calls for at `now`; `runs` are its newest, newest first.

    Late and missing look only at occurrences after the rules, the task (its schedule, its
    enabling) or a cluster-wide pause (`quiet_before`) last changed: what came due while an
    operator held it back is not news. A disabled task is never late or missing.
    """
    found: list[DueAlert] = []
    if task.enabled and (rules.late_after_s or rules.missing):
        occurrences = _occurrences(schedule, _window_start(task, rules, runs, now, quiet_before), now)
        late = _late(task, rules, runs, occurrences, now, sent) if rules.late_after_s else None
        if late is not None:
            found.append(late)
        if rules.missing:
            reported = {a.occurrence for a in (late,) if a is not None} | {sent.last_late}
            missing = _missing(task, runs, occurrences, sent, reported)
            if missing is not None:
                found.append(missing)
    if rules.slower_than_s or rules.slower_than_p95:
        found.extend(_slow(task, rules, runs, now, sent))
    return found


def _window_start(
    task: TaskRecord, rules: AlertRules, runs: Sequence[RunRecord], now: datetime, quiet_before: datetime | None
) -> datetime:
    starts = [now - LOOKBACK, task.updated_at]
    starts += [t for t in (rules.updated_at, quiet_before) if t is not None]
    if len(runs) >= RUN_WINDOW:  # older runs were not read: do not call their occurrences missing
        starts.append(min(r.scheduled_for for r in runs))
    return max(starts)


def _occurrences(schedule: CronSchedule, start: datetime, now: datetime) -> list[datetime]:
    """Fire times after `start` up to `now`, oldest first, at most the newest MAX_OCCURRENCES (UTC)."""
    newest = itertools.takewhile(lambda t: t > start, schedule.fire_times_back(now))
    return sorted(t.astimezone(UTC) for t in itertools.islice(newest, MAX_OCCURRENCES))


def _ran(runs: Sequence[RunRecord]) -> set[datetime]:
    """The occurrences a scheduled run was started for (a skipped one did not run)."""
    return {r.scheduled_for for r in runs if r.trigger == Trigger.SCHEDULE and r.status != RunStatus.SKIPPED}


def _started_since(runs: Sequence[RunRecord], since: datetime) -> bool:
    return any(r.started_at >= since and r.status is not RunStatus.SKIPPED for r in runs)


def _late(
    task: TaskRecord,
    rules: AlertRules,
    runs: Sequence[RunRecord],
    occurrences: Sequence[datetime],
    now: datetime,
    sent: SentAlerts,
) -> DueAlert | None:
    """The newest occurrence past its grace with no run started since it; one alert until a run starts."""
    grace = timedelta(seconds=rules.late_after_s or 0)
    overdue = [t for t in occurrences if t + grace <= now]
    if not overdue:
        return None
    due = overdue[-1]
    if due in _ran(runs) or _started_since(runs, due):
        return None
    if sent.last_late is not None and not _started_since(runs, sent.last_late):
        return None  # the same spell of lateness: told once already
    minutes = math.floor((now - due).total_seconds() / 60)
    summary = (
        f"task {task.name} is late: the run due at {_hm(due)} has not started "
        f"({minutes} min later; grace {rules.late_after_s} s)"
    )
    return DueAlert(AlertKind.LATE, due.isoformat(), summary, occurrence=due, facts={"grace_s": rules.late_after_s})


def _missing(
    task: TaskRecord,
    runs: Sequence[RunRecord],
    occurrences: Sequence[datetime],
    sent: SentAlerts,
    reported: set[datetime | None],
) -> DueAlert | None:
    """Occurrences the scheduler has moved past (next_run_at is later) without running them, in one alert."""
    if task.next_run_at is None:
        return None
    ran = _ran(runs)
    missed = [
        t
        for t in occurrences
        if t < task.next_run_at
        and t not in ran
        and t not in reported
        and (sent.last_missing is None or t > sent.last_missing)
    ]
    if not missed:
        return None
    first, last = missed[0], missed[-1]
    span = _hm(first) if first == last else f"{_hm(first)} to {_hm(last)}"
    count = len(missed)
    summary = f"task {task.name} missed {count} occurrence{'s' if count > 1 else ''} ({span}): no run was started"
    facts = {"missed": count, "first": first.isoformat(), "last": last.isoformat()}
    return DueAlert(AlertKind.MISSING, last.isoformat(), summary, occurrence=last, facts=facts)


def _slow(
    task: TaskRecord, rules: AlertRules, runs: Sequence[RunRecord], now: datetime, sent: SentAlerts
) -> list[DueAlert]:
    """Runs (running, or among the newest) past slower_than_s, or past k times the p95 of earlier successes."""
    found = []
    for run in runs[:SLOW_WINDOW]:
        if run.id in sent.slow_run_ids or (rules.updated_at is not None and run.started_at < rules.updated_at):
            continue
        seconds = _duration_s(run, now)
        limit = slow_limit_s(rules, [r for r in runs if r.id < run.id])
        if seconds is None or limit is None or seconds <= limit:
            continue
        state = "has been running for" if run.status is RunStatus.RUNNING else "took"
        summary = f"task {task.name} is slow: run {run.id} {state} {seconds:.0f} s (limit {limit:.0f} s)"
        facts = {"duration_s": round(seconds, 3), "limit_s": round(limit, 3)}
        found.append(DueAlert(AlertKind.SLOW, f"run:{run.id}", summary, run=run, facts=facts))
    return found


def slow_limit_s(rules: AlertRules, earlier: Sequence[RunRecord]) -> float | None:
    """The tighter of slower_than_s and slower_than_p95 x the p95 of `earlier` succeeded runs (None: no limit)."""
    limits = [float(rules.slower_than_s)] if rules.slower_than_s else []
    if rules.slower_than_p95:
        durations = [r.duration_ms / 1000 for r in earlier if r.status is RunStatus.SUCCEEDED and r.duration_ms]
        p95 = percentile(durations[:RUN_WINDOW], 0.95)
        if p95 is not None and len(durations) >= MIN_P95_SAMPLES:
            limits.append(rules.slower_than_p95 * p95)
    return min(limits) if limits else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th quantile by the nearest-rank method (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _duration_s(run: RunRecord, now: datetime) -> float | None:
    if run.status is RunStatus.RUNNING:
        return (now - run.started_at).total_seconds()
    if run.status in (RunStatus.SKIPPED, RunStatus.CANCELLED) or run.duration_ms is None:
        return None
    return run.duration_ms / 1000


def _hm(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
