"""Task definitions and changes to them: what may be set, checked before anything is stored."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, TypeVar

from mediabeat.domain.scheduler import NewTask, TaskChanges, TaskRecord, TaskValidationError
from mediabeat.schedule import CronError, CronSchedule, MisfirePolicy, OverlapPolicy, parse_schedule
from mediabeat.schedule.cron import load_zone

MAX_TIMEOUT_S = 7 * 24 * 3600
MAX_RETRIES = 100
MAX_BACKOFF_S = 7 * 24 * 3600
# Task priorities run from MIN_PRIORITY to MAX_PRIORITY; 0 is the default.
MIN_PRIORITY, MAX_PRIORITY = -1000, 1000
Policy = TypeVar("Policy", MisfirePolicy, OverlapPolicy)

TASK_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")


def draft_task(spec: NewTask) -> TaskRecord:
    """A not-yet-stored task, so creation reuses the validation of changes."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return TaskRecord(
        id=0,
        name=spec.name,
        description="",
        handler=spec.handler,
        cron="",
        timezone="UTC",
        enabled=True,
        misfire_policy=MisfirePolicy.RUN_ONCE,
        overlap_policy=OverlapPolicy.FORBID,
        timeout_s=3600,
        params=None,
        last_run_at=None,
        last_status=None,
        next_run_at=None,
        created_at=epoch,
        updated_at=epoch,
    )


def check_schedule(cron: str, timezone: str) -> CronSchedule:
    """The schedule, parsed; TaskValidationError names the field at fault: cron or timezone."""
    try:
        load_zone(timezone)
    except CronError as exc:
        raise TaskValidationError("timezone", str(exc)) from None
    try:
        return parse_schedule(cron, timezone)
    except CronError as exc:
        raise TaskValidationError("cron", str(exc)) from None


def validate_changes(task: TaskRecord, changes: TaskChanges, *, only_changed: bool = True) -> dict[str, Any]:
    """The column values a change sets, checked; TaskValidationError names the bad field."""
    values: dict[str, Any] = {}
    cron = changes.cron if changes.cron is not None else task.cron
    zone = changes.timezone if changes.timezone is not None else task.timezone
    if changes.timezone is not None or changes.cron is not None:
        check_schedule(cron, zone)
        if changes.cron is not None:
            values["cron"] = " ".join(changes.cron.split())
        if changes.timezone is not None:
            values["timezone"] = changes.timezone
    if changes.misfire_policy is not None:
        values["misfire_policy"] = _choice("misfire_policy", changes.misfire_policy, MisfirePolicy)
    if changes.overlap_policy is not None:
        values["overlap_policy"] = _choice("overlap_policy", changes.overlap_policy, OverlapPolicy)
    if changes.timeout_s is not None:
        if not 1 <= changes.timeout_s <= MAX_TIMEOUT_S:
            raise TaskValidationError("timeout_s", f"must be between 1 and {MAX_TIMEOUT_S} seconds")
        values["timeout_s"] = changes.timeout_s
    values.update(_retry_values(task, changes))
    if changes.priority is not None:
        if not MIN_PRIORITY <= changes.priority <= MAX_PRIORITY:
            raise TaskValidationError("priority", f"must be between {MIN_PRIORITY} and {MAX_PRIORITY}")
        values["priority"] = changes.priority
    if changes.keep_empty_runs is not None:
        values["keep_empty_runs"] = changes.keep_empty_runs
    if changes.enabled is not None:
        values["enabled"] = changes.enabled
    if changes.description is not None:
        values["description"] = changes.description
    if not only_changed:
        return values
    return {k: v for k, v in values.items() if getattr(task, k) != v}


def _retry_values(task: TaskRecord, changes: TaskChanges) -> dict[str, int]:
    """max_retries (0 to 100) and the backoff: retry_backoff_s doubling up to retry_backoff_max_s."""
    values: dict[str, int] = {}
    if changes.max_retries is not None:
        if not 0 <= changes.max_retries <= MAX_RETRIES:
            raise TaskValidationError("max_retries", f"must be between 0 and {MAX_RETRIES}")
        values["max_retries"] = changes.max_retries
    for name in ("retry_backoff_s", "retry_backoff_max_s"):
        value = getattr(changes, name)
        if value is not None:
            if not 1 <= value <= MAX_BACKOFF_S:
                raise TaskValidationError(name, f"must be between 1 and {MAX_BACKOFF_S} seconds")
            values[name] = value
    base = values.get("retry_backoff_s", task.retry_backoff_s)
    if values and values.get("retry_backoff_max_s", task.retry_backoff_max_s) < base:
        raise TaskValidationError("retry_backoff_max_s", f"must be at least retry_backoff_s ({base} s)")
    return values


def retry_delay_s(task: TaskRecord, attempt: int) -> int:
    """Seconds before retry number `attempt` (1, 2, ...): the backoff doubling each time, capped."""
    return min(task.retry_backoff_s * (1 << min(max(attempt - 1, 0), 30)), task.retry_backoff_max_s)


def _choice(field_name: str, value: str, kind: type[Policy]) -> Policy:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise TaskValidationError(field_name, f"{value!r} is not one of {allowed}") from None
