"""The scheduler's vocabulary: run states and triggers, task and run records, filters and errors. No I/O."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from mediabeat.schedule.policy import MisfirePolicy, OverlapPolicy

__all__ = [
    "FAILURE_STATUSES",
    "AllWorkFailed",
    "ChainKind",
    "ChainLink",
    "ClaimOutcome",
    "ClaimedRuns",
    "MisfirePolicy",
    "NewTask",
    "NodeRecord",
    "NodeState",
    "OverlapForbidden",
    "OverlapPolicy",
    "RunFilter",
    "RunNotFound",
    "RunNotRunning",
    "RunRecord",
    "RunStart",
    "RunStatus",
    "SchedulerPause",
    "SchedulerStats",
    "TaskChains",
    "TaskChanges",
    "TaskConflict",
    "TaskNotFound",
    "TaskRecord",
    "TaskStats",
    "TaskValidationError",
    "Trigger",
    "member_or_none",
]

Member = TypeVar("Member", bound=enum.StrEnum)


def member_or_none(kind: type[Member], text: str | None) -> Member | None:
    """The member of `kind` whose value is `text`, or None (for a filter that ignores unknown values)."""
    try:
        return kind(text) if text is not None else None
    except ValueError:
        return None


class RunStatus(enum.StrEnum):
    """Where a run is: running, or how it ended. The values are the strings stored in the database."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    ABANDONED = "abandoned"
    CANCELLED = "cancelled"
    # Claimed by a node (node_id) that has not started it yet; with no node, given back for any node to start.
    QUEUED = "queued"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.RUNNING, RunStatus.QUEUED)

    @property
    def is_failure(self) -> bool:
        """A run that did not do its work: failed, timed out, or abandoned by a node that died."""
        return self in FAILURE_STATUSES


FAILURE_STATUSES = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.ABANDONED})


class Trigger(enum.StrEnum):
    """What started a run: its schedule, a person (API, CLI, dashboard), an upstream task's end, or a retry."""

    SCHEDULE = "schedule"
    MANUAL = "manual"
    DEPENDENCY = "dependency"
    RETRY = "retry"


class ChainKind(enum.StrEnum):
    """How a chained task follows an upstream task: after it succeeds, or after it fails (retries used up)."""

    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One chain edge: `downstream` runs after `upstream` succeeds or fails, as `kind` says."""

    upstream_id: int
    upstream: str
    downstream_id: int
    downstream: str
    kind: ChainKind


@dataclass(frozen=True, slots=True)
class TaskChains:
    """The chains one task is part of: the tasks it runs after (upstream) and those that run after it."""

    upstream: tuple[ChainLink, ...] = ()
    downstream: tuple[ChainLink, ...] = ()

    @property
    def after(self) -> list[str]:
        """The tasks that must all succeed (in the same cycle) before this one runs."""
        return sorted(link.upstream for link in self.upstream if link.kind is ChainKind.SUCCESS)

    @property
    def on_failure_of(self) -> list[str]:
        """The tasks whose failure (retries used up) starts this one."""
        return sorted(link.upstream for link in self.upstream if link.kind is ChainKind.FAILURE)

    @property
    def after_task_id(self) -> int | None:
        """The single-upstream field of old: the lowest id among the tasks this one runs after, if any."""
        ids = [link.upstream_id for link in self.upstream if link.kind is ChainKind.SUCCESS]
        return min(ids) if ids else None


class NodeState(enum.StrEnum):
    """A serve or worker process: running, stopped cleanly, or dead (no heartbeat lately)."""

    RUNNING = "running"
    DEAD = "dead"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: int
    name: str
    description: str
    handler: str
    cron: str
    timezone: str
    enabled: bool
    misfire_policy: MisfirePolicy
    overlap_policy: OverlapPolicy
    timeout_s: int
    params: dict[str, Any] | None
    last_run_at: datetime | None
    last_status: RunStatus | None
    next_run_at: datetime | None
    created_at: datetime
    updated_at: datetime
    max_retries: int = 0
    retry_backoff_s: int = 60
    retry_backoff_max_s: int = 3600
    # A retry waiting to start: when, of which failed run, and which attempt it will be.
    retry_at: datetime | None = None
    retry_run_id: int | None = None
    retry_attempt: int = 0
    # When more runs are due than a node may start, higher priority first (then the earlier due time).
    priority: int = 0
    # Keep the rows of scheduled runs that found nothing to do (else they are only counted).
    keep_empty_runs: bool = False
    # The latest occurrence the schedule claimed: the claim never runs one at or before it again.
    last_scheduled_for: datetime | None = None
    last_empty_run_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    task_id: int
    task: str
    trigger: Trigger
    scheduled_for: datetime
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    status: RunStatus
    error: str | None
    traceback: str | None
    result: dict[str, Any] | None
    missed: int
    node_id: str | None
    heartbeat_at: datetime | None
    triggered_by: str | None
    cancel_requested_at: datetime | None = None
    cancelled_by: str | None = None
    retry_of: int | None = None  # the failed run this run retries (trigger retry)
    attempt: int = 0  # 0 for a first run, n for its n-th retry
    log: str | None = None  # what the run logged (left out of listings)


@dataclass(frozen=True, slots=True)
class TaskStats:
    """Per-task figures for the stats view; durations in milliseconds."""

    task_id: int
    name: str
    enabled: bool
    last_run_at: datetime | None
    last_status: RunStatus | None
    next_run_at: datetime | None
    runs: int
    p50_ms: float | None
    p95_ms: float | None
    # Scheduled runs that found nothing to do and were counted instead of kept (included in `runs`).
    empty_runs: int = 0
    empty_runs_24h: int = 0
    last_empty_run_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SchedulerStats:
    total_tasks: int
    enabled_tasks: int
    total_runs: int
    succeeded_runs: int
    failed_runs: int
    running_runs: int
    runs_last_24h: int
    tasks: list[TaskStats]
    # Of total_runs (and of succeeded_runs): runs that found nothing to do, counted, not kept.
    empty_runs: int = 0


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """One `serve` or `worker` process, with its state as of the moment it was read."""

    id: str
    host: str
    pid: int
    version: str
    role: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    state: NodeState

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs a listing shows; None means any."""

    task: str | None = None
    status: RunStatus | None = None
    trigger: Trigger | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class TaskChanges:
    """Settings to change on a task, as given (checked by validate_changes); None leaves a setting as it is."""

    cron: str | None = None
    timezone: str | None = None
    misfire_policy: str | None = None
    overlap_policy: str | None = None
    timeout_s: int | None = None
    enabled: bool | None = None
    description: str | None = None
    # Run after all these tasks succeed (a fan-in), or after any of these fails; () removes them all.
    after: tuple[str, ...] | None = None
    on_failure_of: tuple[str, ...] | None = None
    max_retries: int | None = None
    retry_backoff_s: int | None = None
    retry_backoff_max_s: int | None = None
    priority: int | None = None
    keep_empty_runs: bool | None = None


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task to create: a registered handler on a cron schedule."""

    name: str
    handler: str
    cron: str
    timezone: str = "UTC"
    description: str = ""
    misfire_policy: str = MisfirePolicy.RUN_ONCE
    overlap_policy: str = OverlapPolicy.FORBID
    timeout_s: int = 3600
    enabled: bool = True
    after: tuple[str, ...] = ()
    on_failure_of: tuple[str, ...] = ()
    params: dict[str, Any] | None = None
    max_retries: int = 0
    retry_backoff_s: int = 60
    retry_backoff_max_s: int = 3600
    priority: int = 0
    keep_empty_runs: bool = False

    def as_changes(self) -> TaskChanges:
        return TaskChanges(
            cron=self.cron,
            timezone=self.timezone,
            misfire_policy=self.misfire_policy,
            overlap_policy=self.overlap_policy,
            timeout_s=self.timeout_s,
            enabled=self.enabled,
            description=self.description,
            max_retries=self.max_retries,
            retry_backoff_s=self.retry_backoff_s,
            retry_backoff_max_s=self.retry_backoff_max_s,
            priority=self.priority,
            keep_empty_runs=self.keep_empty_runs,
        )


@dataclass(frozen=True, slots=True)
class ClaimedRuns:
    """Runs this node won for one task: execute them in order (catch-up runs come as several)."""

    task: TaskRecord
    run_ids: list[int]
    scheduled_for: list[datetime]
    # Claimed as `queued`: the node starts them when a slot frees (its backlog), writing the start then.
    queued: bool = False


@dataclass(slots=True)
class ClaimOutcome:
    """What one claim step did: the runs to execute and how many tasks it looked at."""

    claimed: list[ClaimedRuns] = field(default_factory=list)
    examined: int = 0
    skipped_runs: int = 0


@dataclass(frozen=True, slots=True)
class RunStart:
    """When a claimed run really started (a queued run, or a later catch-up occurrence), to be written."""

    run_id: int
    task_id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class RunEnd:
    """How one run ended, to be written: `keep` False drops the row of a run that found nothing to do.

    A dropped run is counted per task and hour instead (scheduler_empty_runs).
    """

    run_id: int
    status: RunStatus
    finished_at: datetime
    error: str | None = None
    traceback: str | None = None
    result: dict[str, Any] | None = None
    log: str | None = None
    keep: bool = True


class TaskNotFound(LookupError):
    """No task has that id or name."""


class RunNotFound(LookupError):
    """No run has that id (it may have been removed by the nightly cleanup)."""


class RunNotRunning(Exception):
    """A run that has already ended cannot be cancelled; `status` says how it ended."""

    def __init__(self, run_id: int, status: RunStatus) -> None:
        super().__init__(f"run {run_id} has already finished ({status}); only a running run can be cancelled")
        self.run_id = run_id
        self.status = status


@dataclass(frozen=True, slots=True)
class SchedulerPause:
    """Whether the cluster's scheduler is paused: no scheduled, chained or retry runs start on any node."""

    paused: bool
    reason: str | None = None
    changed_by: str | None = None
    changed_at: datetime | None = None


class TaskValidationError(ValueError):
    """A change to a task is invalid; `field` names the setting and the message says why."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


class TaskConflict(TaskValidationError):
    """A well-formed change that the current state refuses (the name is taken, a run is in flight); the CLI exits 1."""


class OverlapForbidden(Exception):
    """A run was asked for while another run of the task is running and its policy is `forbid`."""

    def __init__(self, task: str, running_run_id: int) -> None:
        super().__init__(f"task {task!r} is already running (run {running_run_id}) and its overlap policy is forbid")
        self.task = task
        self.running_run_id = running_run_id


class AllWorkFailed(Exception):
    """Raised by a handler that attempted at least one unit of work and saw every one fail.

    The run is recorded `failed` with this message, and `result` (the handler's counts) is kept
    on the run, as a succeeded run's would be.
    """

    def __init__(self, message: str, result: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.message = message
        self.result = dict(result)


@dataclass(frozen=True, slots=True)
class RunPoint:
    """One run as a chart or a sparkline sees it: its outcome, when it started and how long it took."""

    id: int
    status: str
    started_at: datetime
    duration_ms: int | None
