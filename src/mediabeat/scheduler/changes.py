"""Task definitions and changes to them: what may be set, checked before anything is stored."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, TypeVar

from mediabeat.domain.scheduler import NewTask, TaskChanges, TaskRecord, TaskValidationError
from mediabeat.schedule import CronError, CronSchedule, MisfirePolicy, OverlapPolicy, parse_schedule
from mediabeat.schedule.cron import load_zone

MAX_TIMEOUT_S = 7 * 24 * 3600
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
        after_task_id=None,
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
    if changes.enabled is not None:
        values["enabled"] = changes.enabled
    if changes.description is not None:
        values["description"] = changes.description
    if not only_changed:
        return values
    return {k: v for k, v in values.items() if getattr(task, k) != v}


def _choice(field_name: str, value: str, kind: type[Policy]) -> Policy:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise TaskValidationError(field_name, f"{value!r} is not one of {allowed}") from None
