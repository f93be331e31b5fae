"""Alert rules per task, their mute and the alerts they raised; admins only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from mediabeat.domain.ids import MAX_ID
from mediabeat.domain.scheduler import TaskNotFound, TaskValidationError
from mediabeat.domain.task_alerts import AlertKind, AlertRuleChanges, AlertRules, TaskAlertRecord
from mediabeat.scheduler.service import SchedulerService
from mediabeat.web.api.common import audit
from mediabeat.web.deps import SchedulerViewer, TaskEditor
from mediabeat.web.errors import ApiError, error_responses, not_found

router = APIRouter(prefix="/api/v1/scheduler", tags=["scheduler"])

TaskId = Annotated[int, Path(ge=1, le=MAX_ID, description="The task's numeric id")]


class AlertRulesIn(BaseModel):
    """Alert rules to change; omitted ones stay as they are. null (or 0, or "") switches a rule off."""

    model_config = ConfigDict(extra="forbid")
    after_failures: int | None = Field(
        default=None, description="Alert when this many runs in a row failed (retries exhausted), 1 to 1000"
    )
    late_after_s: int | None = Field(
        default=None, description="Alert when an occurrence has not started this many seconds after it was due"
    )
    missing: bool | None = Field(default=None, description="Alert about occurrences the scheduler passed unrun")
    slower_than_s: int | None = Field(default=None, description="Alert when a run takes longer than this (seconds)")
    slower_than_p95: float | None = Field(
        default=None, description="Alert when a run takes longer than this many times the p95 of recent successes"
    )
    mute_until: datetime | None = Field(
        default=None, description="Send no alert until then (recorded as muted); null unmutes"
    )
    webhook_url: str | None = Field(
        default=None, max_length=2000, description="This task's own webhook, instead of the global channels"
    )
    email: str | None = Field(default=None, max_length=254, description="This task's own address, likewise")

    def changes(self) -> AlertRuleChanges:
        """As a change: an explicit null switches a rule off (or unmutes), an omitted field is left as it is."""
        values: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name == "mute_until":
                values.update(mute_until=value, unmute=value is None)
            elif value is None:
                values[name] = _OFF[name]
            else:
                values[name] = value
        return AlertRuleChanges(**values)


_OFF: dict[str, Any] = {
    "after_failures": 1,
    "late_after_s": 0,
    "missing": False,
    "slower_than_s": 0,
    "slower_than_p95": 0,
    "webhook_url": "",
    "email": "",
}


class TaskAlertOut(BaseModel):
    id: int
    kind: AlertKind
    message: str
    run_id: int | None
    occurrence: datetime | None
    destination: str = Field(description='"global", or the task\'s own webhook and/or address')
    muted: bool = Field(description="Held back by a mute: recorded, not sent")
    node_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, alert: TaskAlertRecord) -> TaskAlertOut:
        return cls(**{name: getattr(alert, name) for name in cls.model_fields})


class AlertRulesOut(BaseModel):
    task_id: int
    after_failures: int
    late_after_s: int | None
    missing: bool
    slower_than_s: int | None
    slower_than_p95: float | None
    mute_until: datetime | None
    muted: bool = Field(description="Whether the task's alerts are muted now")
    webhook_url: str | None
    email: str | None
    recent: list[TaskAlertOut] = Field(description="The task's newest alerts, newest first")

    @classmethod
    def of(cls, rules: AlertRules, *, now: datetime, recent: list[TaskAlertRecord]) -> AlertRulesOut:
        fields = {name: getattr(rules, name) for name in cls.model_fields if name not in ("muted", "recent")}
        return cls(**fields, muted=rules.muted(now), recent=[TaskAlertOut.of(a) for a in recent])


def _scheduler(request: Request) -> SchedulerService:
    service: SchedulerService = request.app.state.services.scheduler
    return service


def rule_error(exc: TaskValidationError) -> ApiError:
    return ApiError(422, str(exc), code="invalid", details=[{"field": exc.field, "message": exc.message}])


async def rules_out(service: SchedulerService, task_id: int, *, recent: int = 20) -> AlertRulesOut:
    try:
        rules = await service.alert_rules(task_id)
        alerts = await service.recent_alerts(task_id, limit=recent)
    except TaskNotFound:
        raise not_found(f"task {task_id}") from None
    return AlertRulesOut.of(rules, now=service.clock.now(), recent=alerts)


@router.get(
    "/tasks/{task_id}/alerts",
    response_model=AlertRulesOut,
    summary="A task's alert rules, its mute and its recent alerts",
    responses=error_responses(401, 403, 404, 422),
)
async def get_alert_rules(
    task_id: TaskId,
    request: Request,
    _: SchedulerViewer,
    recent: Annotated[int, Query(ge=0, le=200, description="How many recent alerts")] = 20,
) -> AlertRulesOut:
    return await rules_out(_scheduler(request), task_id, recent=recent)


@router.patch(
    "/tasks/{task_id}/alerts",
    response_model=AlertRulesOut,
    summary="Change a task's alert rules or mute it",
    description="Rules: after_failures (default 1: alert at the first failure, once retries are exhausted), "
    "late_after_s (healthchecks.io's grace), missing, slower_than_s, slower_than_p95 (k times the p95 of the "
    "task's recent succeeded runs, at least 5 of them). Late, missing and slow are checked every 30 s, at a "
    "maintenance heartbeat of the node that holds the maintenance lease; every alert is recorded once, "
    "whichever node finds it. A task's own webhook_url goes through the crawler's SSRF guard; its email "
    "needs MEDIABEAT_SMTP_URL. "
    "With either set, the task's alerts go there instead of the global channels. A recovery notice follows a "
    "failure alert.",
    responses=error_responses(401, 403, 404, 422),
)
async def patch_alert_rules(
    task_id: TaskId, body: AlertRulesIn, request: Request, principal: TaskEditor
) -> AlertRulesOut:
    service = _scheduler(request)
    try:
        await service.set_alert_rules(task_id, body.changes())
    except TaskValidationError as exc:
        raise rule_error(exc) from None
    except TaskNotFound:
        raise not_found(f"task {task_id}") from None
    details = body.model_dump(mode="json", exclude_unset=True)
    await audit(request, principal, "task.alerts", target_type="task", target_id=task_id, details=details)
    return await rules_out(service, task_id)
