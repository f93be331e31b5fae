"""Plain records that the stores return: tasks and runs as the rest of the service sees them."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: int
    name: str
    description: str
    handler: str
    cron: str
    timezone: str
    enabled: bool
    misfire_policy: str
    overlap_policy: str
    timeout_s: int
    after_task_id: int | None
    params: dict[str, Any] | None
    last_run_at: datetime | None
    last_status: str | None
    next_run_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> TaskRecord:
        values = row._asdict()  # one dict per row: row._mapping builds a new view at every access
        return cls(**{name: values[name] for name in cls.__slots__})


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    task_id: int
    task: str
    trigger: str
    scheduled_for: datetime
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    status: str
    error: str | None
    traceback: str | None
    result: dict[str, Any] | None
    missed: int
    node_id: str | None
    heartbeat_at: datetime | None
    triggered_by: str | None

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> RunRecord:
        values = row._asdict()  # one dict per row: row._mapping builds a new view at every access
        return cls(**{name: values[name] for name in cls.__slots__})

    @classmethod
    def all_from(cls, result: sa.Result[Any]) -> list[RunRecord]:
        """Every row of `result` as a record; the columns are matched to the fields once, not per row."""
        keys = list(result.keys())
        pick = operator.itemgetter(*(keys.index(name) for name in cls.__slots__))
        return [cls(*pick(row)) for row in result]


@dataclass(frozen=True, slots=True)
class TaskStats:
    """Per-task figures for the stats view; durations in milliseconds."""

    task_id: int
    name: str
    enabled: bool
    last_run_at: datetime | None
    last_status: str | None
    next_run_at: datetime | None
    runs: int
    p50_ms: float | None
    p95_ms: float | None


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
