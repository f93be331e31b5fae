"""The scheduler API: tasks, runs, statistics; operators watch and steer it, admins also define the tasks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Self

import pydantic_core
from fastapi import APIRouter, Body, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mediabeat.domain.ids import MAX_ID
from mediabeat.domain.scheduler import (
    ChainKind,
    MisfirePolicy,
    NewTask,
    OverlapForbidden,
    OverlapPolicy,
    RunFilter,
    RunNotFound,
    RunNotRunning,
    RunRecord,
    RunStatus,
    SchedulerPause,
    SchedulerStats,
    TaskChains,
    TaskChanges,
    TaskNotFound,
    TaskRecord,
    TaskValidationError,
    Trigger,
)
from mediabeat.schedule import CronError
from mediabeat.schedule.cron import words
from mediabeat.scheduler.changes import check_schedule
from mediabeat.scheduler.registry import UnknownHandler
from mediabeat.scheduler.service import SchedulerService
from mediabeat.web.api.common import audit
from mediabeat.web.api.task_alerts import AlertRulesIn
from mediabeat.web.deps import RunCanceller, SchedulerPauser, SchedulerViewer, TaskEditor, TaskOperator
from mediabeat.web.errors import ApiError, error_responses, not_found

router = APIRouter(prefix="/api/v1/scheduler", tags=["scheduler"])

TaskId = Annotated[int, Path(ge=1, le=MAX_ID, description="The task's numeric id")]
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="The run's numeric id")]
TaskName = Annotated[str, Path(min_length=1, max_length=100, description="The task's name, e.g. nightly-cleanup")]

READ_ERRORS = error_responses(401, 403, 404, 422)
# /stats figures are at most this old (seconds); changes made through the API show at once.
STATS_MAX_AGE_SECONDS = 5.0


class ChainLinkOut(BaseModel):
    name: str = Field(description="The other task")
    kind: ChainKind = Field(description="success: runs after the upstream succeeds; failure: after it fails")


class TaskOut(BaseModel):
    id: int
    name: str
    description: str
    handler: str
    cron: str
    cron_description: str | None
    timezone: str
    enabled: bool
    misfire_policy: MisfirePolicy
    overlap_policy: OverlapPolicy
    timeout_s: int
    max_retries: int = Field(description="Retries of a failed or timed-out run, before the next occurrence")
    retry_backoff_s: int = Field(description="Seconds before the first retry; doubles for each next one")
    retry_backoff_max_s: int = Field(description="Longest wait between retries")
    retry_at: datetime | None = Field(description="When a retry waiting to start is due")
    priority: int = Field(
        default=0,
        description="When more runs are due than a node may start (MEDIABEAT_MAX_CONCURRENT_RUNS), higher "
        "priority starts first, then the earlier due time",
    )
    keep_empty_runs: bool = Field(
        default=False,
        description="Keep the rows of scheduled runs that found nothing to do; otherwise they are only counted",
    )
    last_empty_run_at: datetime | None = Field(default=None, description="When a run last found nothing to do")
    after_task_id: int | None = Field(
        description="Kept for older clients: the (first) task this one runs after; see `after` for all of them"
    )
    after: list[str] = Field(
        description="Runs once all of these tasks have succeeded in the same cycle (each at least once "
        "since this task last ran for that reason)"
    )
    on_failure_of: list[str] = Field(description="Runs when any of these tasks fails, its retries used up")
    downstream: list[ChainLinkOut] = Field(description="The tasks that run after this one, and on what")
    params: dict[str, Any] | None
    last_run_at: datetime | None
    last_status: RunStatus | None
    next_run_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, task: TaskRecord, chains: TaskChains) -> TaskOut:
        fields = {name: getattr(task, name) for name in cls.model_fields if name not in _TASK_OUT_EXTRA}
        return cls(
            **fields,
            cron_description=words(task.cron),
            after_task_id=chains.after_task_id,
            after=chains.after,
            on_failure_of=chains.on_failure_of,
            downstream=[ChainLinkOut(name=link.downstream, kind=link.kind) for link in chains.downstream],
        )


# TaskOut's fields that do not come from the task record.
_TASK_OUT_EXTRA = frozenset({"cron_description", "after_task_id", "after", "on_failure_of", "downstream"})
# Task names, as `after` and `on_failure_of` take them: a list, or for `after` one name as before.
AFTER_HELP = (
    'Run after all of these tasks succeed in the same cycle (a fan-in). One name (a string) still works; "" or [] '
    "removes them"
)
FAILURE_HELP = "Run when any of these tasks fails, after its retries are used up; [] removes them"


TaskNameIn = Annotated[str, Field(max_length=100)]
TaskNamesIn = Annotated[list[TaskNameIn], Field(max_length=100)]


def _names(value: str | list[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(n for n in ([value] if isinstance(value, str) else value) if n)


class TaskList(BaseModel):
    items: list[TaskOut]


class RunOut(BaseModel):
    id: int
    task_id: int
    task: str
    trigger: Trigger
    status: RunStatus
    scheduled_for: datetime
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    error: str | None
    result: dict[str, Any] | None
    missed: int
    node_id: str | None
    heartbeat_at: datetime | None
    triggered_by: str | None
    cancel_requested_at: datetime | None = Field(
        default=None, description="When someone asked to cancel the run (the node executing it stops it)"
    )
    cancelled_by: str | None = Field(default=None, description="Who asked to cancel the run")
    retry_of: int | None = Field(default=None, description="The failed run this one retries (trigger retry)")
    attempt: int = Field(default=0, description="0 for a first run, n for its n-th retry")

    @classmethod
    def of(cls, run: RunRecord) -> Self:
        return cls(**{name: getattr(run, name) for name in cls.model_fields if name != "notice"})


RUN_OUT_FIELDS = tuple(RunOut.model_fields)


class RunDetail(RunOut):
    traceback: str | None


class RunStarted(RunDetail):
    """A run just started by run-now, and anything to know about it."""

    notice: str | None = Field(
        default=None, description="Something to know about this response, e.g. that the scheduler is paused"
    )


class RunLog(BaseModel):
    run_id: int
    status: RunStatus
    lines: list[str] = Field(
        description="Log lines (INFO and above) of the handler and the crawler during the run, oldest first; "
        "empty while the run is running. A last line says how many were cut (MEDIABEAT_RUN_LOG_MAX_CHARS)"
    )


class PauseOut(BaseModel):
    paused: bool = Field(description="While true, no scheduled, chained or retry run starts on any node")
    reason: str | None
    changed_by: str | None = Field(description="Who paused or resumed last")
    changed_at: datetime | None

    @classmethod
    def of(cls, state: SchedulerPause) -> PauseOut:
        return cls(paused=state.paused, reason=state.reason, changed_by=state.changed_by, changed_at=state.changed_at)


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=500, examples=["database maintenance until 04:00"])


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null on the last page")


class TaskStatsOut(BaseModel):
    task_id: int
    name: str
    enabled: bool
    last_run_at: datetime | None
    last_status: RunStatus | None
    next_run_at: datetime | None
    runs: int = Field(description="Every run, those that found nothing to do (and were not kept) included")
    p50_ms: float | None
    p95_ms: float | None
    empty_runs: int = Field(default=0, description="Scheduled runs that found nothing to do, counted but not kept")
    empty_runs_24h: int = Field(default=0, description="Of those, in the last 24 hours (by the hour)")
    last_empty_run_at: datetime | None = Field(default=None, description="When a run last found nothing to do")


class StatsOut(BaseModel):
    total_tasks: int
    enabled_tasks: int
    total_runs: int
    succeeded_runs: int
    failed_runs: int
    running_runs: int
    runs_last_24h: int = Field(description="Runs started in the last 24 hours, empty ones (by the hour) included")
    tasks: list[TaskStatsOut]
    empty_runs: int = Field(
        default=0, description="Of total_runs, scheduled runs that found nothing to do, counted but not kept"
    )

    @classmethod
    def of(cls, stats: SchedulerStats) -> StatsOut:
        return cls(
            total_tasks=stats.total_tasks,
            enabled_tasks=stats.enabled_tasks,
            total_runs=stats.total_runs,
            succeeded_runs=stats.succeeded_runs,
            failed_runs=stats.failed_runs,
            running_runs=stats.running_runs,
            runs_last_24h=stats.runs_last_24h,
            empty_runs=stats.empty_runs,
            tasks=[TaskStatsOut(**{n: getattr(t, n) for n in TaskStatsOut.model_fields}) for t in stats.tasks],
        )


class ToggleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = Field(default=None, description="Set this state instead of flipping (idempotent)")


class TaskPatch(BaseModel):
    """Settings to change; omitted ones stay as they are."""

    model_config = ConfigDict(extra="forbid")
    cron: str | None = Field(default=None, max_length=200, examples=["*/10 * * * *"])
    timezone: str | None = Field(default=None, max_length=64, examples=["Europe/Berlin"])
    misfire_policy: MisfirePolicy | None = None
    overlap_policy: OverlapPolicy | None = None
    timeout_s: int | None = Field(default=None, description="Seconds, 1 to 604800")
    enabled: bool | None = None
    description: str | None = Field(default=None, max_length=2000)
    after: TaskNameIn | TaskNamesIn | None = Field(default=None, description=AFTER_HELP)
    on_failure_of: TaskNamesIn | None = Field(default=None, description=FAILURE_HELP)
    max_retries: int | None = Field(default=None, description="0 to 100")
    retry_backoff_s: int | None = Field(default=None, description="Seconds, 1 to 604800")
    retry_backoff_max_s: int | None = Field(default=None, description="Seconds, 1 to 604800, at least retry_backoff_s")
    priority: int | None = Field(default=None, description="-1000 to 1000; higher starts first under the run limit")
    keep_empty_runs: bool | None = Field(default=None, description="Keep rows of runs that found nothing to do")
    alerts: AlertRulesIn | None = Field(default=None, description="Alert rules to change (as PATCH .../alerts)")

    def changes(self) -> TaskChanges:
        values = self.model_dump(exclude={"alerts"})
        values.update(after=_names(self.after), on_failure_of=_names(self.on_failure_of))
        return TaskChanges(**values)


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, examples=["nightly-report"])
    handler: str = Field(min_length=1, max_length=100, examples=["nightly_cleanup"])
    cron: str = Field(min_length=1, max_length=200, examples=["0 3 * * *"])
    timezone: str = Field(default="UTC", max_length=64)
    description: str = Field(default="", max_length=2000)
    misfire_policy: MisfirePolicy = MisfirePolicy.RUN_ONCE
    overlap_policy: OverlapPolicy = OverlapPolicy.FORBID
    timeout_s: int = Field(default=3600, description="Seconds, 1 to 604800")
    enabled: bool = True
    after: TaskNameIn | TaskNamesIn | None = Field(default=None, description=AFTER_HELP)
    on_failure_of: TaskNamesIn = Field(default_factory=list, description=FAILURE_HELP)
    params: dict[str, Any] | None = None
    max_retries: int = Field(default=0, description="Retries of a failed or timed-out run (0 to 100)")
    retry_backoff_s: int = Field(default=60, description="Seconds before the first retry; doubles each time")
    retry_backoff_max_s: int = Field(default=3600, description="Longest wait between retries")
    priority: int = Field(default=0, description="-1000 to 1000; higher starts first under the run limit")
    keep_empty_runs: bool = Field(default=False, description="Keep rows of runs that found nothing to do")
    alerts: AlertRulesIn | None = Field(
        default=None,
        description="Alert rules (as PATCH .../alerts); default: "
        "alert at the first failure and on recovery, to the global channels",
    )


class Upcoming(BaseModel):
    task_id: int
    timezone: str
    times: list[datetime]


class HandlerList(BaseModel):
    items: list[str]


class CronPreview(BaseModel):
    cron: str = Field(description="The expression, whitespace normalised")
    timezone: str
    description: str | None = Field(description="The schedule in words, e.g. 'Every 10 minutes'")
    times: list[datetime] = Field(description="The next fire times from now, in the time zone")


class StatsCache:
    """The statistics, at most max_age old: a request older than that gets the last figures at once and
    starts one refresh in the background, so no reader waits on aggregate queries over a long run history.
    A change made through this API marks the figures stale, and the next request waits for fresh ones."""

    def __init__(self, service: SchedulerService, max_age: float = STATS_MAX_AGE_SECONDS) -> None:
        self.service = service
        self.max_age = max_age
        self._value: SchedulerStats | None = None
        self._taken = 0.0
        self._refresh: asyncio.Task[SchedulerStats] | None = None

    def invalidate(self) -> None:
        self._value = None

    async def get(self) -> SchedulerStats:
        loop = asyncio.get_running_loop()
        if self._value is not None and loop.time() - self._taken <= self.max_age:
            return self._value
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.create_task(self._compute(), name="mediabeat-stats")
        if self._value is not None:
            return self._value
        return await asyncio.shield(self._refresh)

    async def _compute(self) -> SchedulerStats:
        started = asyncio.get_running_loop().time()
        value = await self.service.stats()
        self._value, self._taken = value, started
        return value


def stats_cache(request: Request) -> StatsCache:
    """The app's one StatsCache (the stats endpoint and /metrics read through it)."""
    cache: StatsCache | None = getattr(request.app.state, "stats_cache", None)
    if cache is None:
        cache = StatsCache(_scheduler(request))
        request.app.state.stats_cache = cache
    return cache


def _changed(request: Request) -> None:
    stats_cache(request).invalidate()


def _scheduler(request: Request) -> SchedulerService:
    service: SchedulerService = request.app.state.services.scheduler
    return service


def _invalid(exc: TaskValidationError) -> ApiError:
    return ApiError(422, str(exc), code="invalid", details=[{"field": exc.field, "message": exc.message}])


async def _task_out(service: SchedulerService, task: TaskRecord) -> TaskOut:
    return TaskOut.of(task, await service.task_chains(task.id))


async def _task(service: SchedulerService, task_id: int) -> TaskRecord:
    try:
        return await service.get_task(task_id)
    except TaskNotFound:
        raise not_found(f"task {task_id}") from None


def as_utc(value: datetime | None, field: str) -> datetime | None:
    """An instant from a query: naive means UTC; out-of-range values are a 422, not a crash."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ApiError(
            422, f"invalid input: {field}: out of range", details=[{"field": field, "message": "out of range"}]
        ) from None


@router.get("/tasks", response_model=TaskList, summary="Every task", responses=error_responses(401, 403))
async def list_tasks(request: Request, _: SchedulerViewer) -> TaskList:
    service = _scheduler(request)
    tasks, chains = await service.list_tasks(), await service.all_chains()
    return TaskList(items=[TaskOut.of(t, chains.get(t.id, TaskChains())) for t in tasks])


@router.post(
    "/tasks",
    response_model=TaskOut,
    status_code=201,
    summary="Create a task that runs a registered handler on a schedule",
    responses=error_responses(401, 403, 422),
)
async def create_task(body: TaskCreate, request: Request, response: Response, principal: TaskEditor) -> TaskOut:
    service = _scheduler(request)
    values = body.model_dump(exclude={"alerts"})
    values.update(after=_names(body.after) or (), on_failure_of=_names(body.on_failure_of) or ())
    try:
        alerts = body.alerts.changes() if body.alerts is not None else None
        task = await service.create_task(NewTask(**values), alerts=alerts)
    except TaskValidationError as exc:
        raise _invalid(exc) from None
    _changed(request)
    await audit(
        request, principal, "task.create", target_type="task", target_id=task.id, details=body.model_dump(mode="json")
    )
    response.headers["Location"] = f"/api/v1/scheduler/tasks/{task.id}"
    return await _task_out(service, task)


@router.get("/tasks/{task_id}", response_model=TaskOut, summary="One task", responses=READ_ERRORS)
async def get_task(task_id: TaskId, request: Request, _: SchedulerViewer) -> TaskOut:
    service = _scheduler(request)
    return await _task_out(service, await _task(service, task_id))


@router.patch(
    "/tasks/{task_id}",
    response_model=TaskOut,
    summary="Change a task's cron, time zone, policies, timeout, description or chain",
    responses=READ_ERRORS,
)
async def patch_task(task_id: TaskId, body: TaskPatch, request: Request, principal: TaskEditor) -> TaskOut:
    service = _scheduler(request)
    before = await _task(service, task_id)
    try:
        if body.alerts is not None:
            await service.set_alert_rules(task_id, body.alerts.changes())
        task = await service.update_task(task_id, body.changes())
    except TaskValidationError as exc:
        raise _invalid(exc) from None
    except TaskNotFound:
        raise not_found(f"task {task_id}") from None
    changed = {k: v for k, v in body.model_dump(mode="json", exclude_none=True).items()}
    _changed(request)
    await audit(
        request,
        principal,
        "task.update",
        target_type="task",
        target_id=task_id,
        details={"name": before.name, **changed},
    )
    return await _task_out(service, task)


@router.delete(
    "/tasks/{task_id}",
    status_code=204,
    summary="Delete a task and its run history",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def delete_task(task_id: TaskId, request: Request, principal: TaskEditor) -> Response:
    service = _scheduler(request)
    task = await _task(service, task_id)
    try:
        await service.delete_task(task_id)
    except TaskValidationError as exc:
        raise ApiError(409, exc.message, code="task_running") from None
    except TaskNotFound:
        raise not_found(f"task {task_id}") from None
    _changed(request)
    await audit(request, principal, "task.delete", target_type="task", target_id=task_id, details={"name": task.name})
    return Response(status_code=204)


@router.post(
    "/tasks/{task_id}/toggle",
    response_model=TaskOut,
    summary='Flip enabled, or set it with {"enabled": bool}',
    responses=READ_ERRORS,
)
async def toggle_task(
    task_id: TaskId, request: Request, principal: TaskOperator, body: Annotated[ToggleIn | None, Body()] = None
) -> TaskOut:
    service = _scheduler(request)
    task = await _task(service, task_id)
    enabled = body.enabled if body is not None and body.enabled is not None else not task.enabled
    try:
        updated = await service.set_enabled(task_id, enabled)
    except TaskNotFound:
        raise not_found(f"task {task_id}") from None
    _changed(request)
    await audit(
        request,
        principal,
        "task.enable" if enabled else "task.disable",
        target_type="task",
        target_id=task_id,
        details={"name": task.name, "enabled": enabled},
    )
    return await _task_out(service, updated)


@router.get("/tasks/{task_id}/upcoming", response_model=Upcoming, summary="The next fire times", responses=READ_ERRORS)
async def upcoming(
    task_id: TaskId,
    request: Request,
    _: SchedulerViewer,
    count: Annotated[int, Query(ge=1, le=100, description="How many fire times")] = 5,
) -> Upcoming:
    service = _scheduler(request)
    task = await _task(service, task_id)
    try:
        times = await service.upcoming(task, count)
    except CronError as exc:
        raise ApiError(409, str(exc), code="unusable_schedule") from None
    return Upcoming(task_id=task.id, timezone=task.timezone, times=times)


@router.post(
    "/tasks/{name}/run",
    response_model=RunStarted,
    status_code=202,
    summary="Run a task now: 202 with the run and its Location; with wait=true, 200 with the finished run",
    responses={
        200: {"model": RunStarted, "description": "The finished run (wait=true)"},
        **error_responses(401, 403, 404, 409, 422),
    },
)
async def run_task(
    name: TaskName,
    request: Request,
    response: Response,
    principal: TaskOperator,
    wait: Annotated[bool, Query(description="Wait for the run to finish")] = False,
) -> RunStarted:
    service = _scheduler(request)
    try:
        task = await service.get_task_by_name(name)
        run_id = await service.run_now(name, triggered_by=principal.email)
    except TaskNotFound:
        raise not_found(f"task {name!r}") from None
    except OverlapForbidden as exc:
        raise ApiError(409, str(exc), code="already_running", details={"running_run_id": exc.running_run_id}) from None
    except UnknownHandler as exc:
        raise ApiError(409, str(exc), code="handler_unavailable") from None
    _changed(request)
    await audit(
        request, principal, "task.run", target_type="task", target_id=task.id, details={"name": name, "run_id": run_id}
    )
    response.headers["Location"] = f"/api/v1/scheduler/runs/{run_id}"
    pause = await service.pause_state()
    notice = (
        f"the scheduler is paused ({pause.reason or 'no reason given'}); manual runs still start"
        if pause.paused
        else None
    )
    if wait:
        run = await asyncio.shield(service.wait_for_run(run_id))
        _changed(request)
        response.status_code = 200
    else:
        found = await service.get_run(run_id)
        if found is None:
            raise not_found(f"run {run_id}")
        run = found
    return RunStarted.of(run).model_copy(update={"notice": notice})


@router.get(
    "/runs",
    response_model=RunPage,
    summary="Runs, newest first, filtered; page with cursor",
    responses=error_responses(401, 403, 422),
)
async def list_runs(
    request: Request,
    _: SchedulerViewer,
    task: Annotated[str | None, Query(max_length=100, description="Task name")] = None,
    status: Annotated[RunStatus | None, Query()] = None,
    trigger: Annotated[Trigger | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="Started at or after (ISO 8601; no offset means UTC)")] = None,
    until: Annotated[datetime | None, Query(description="Started before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=40, pattern=r"^[0-9]+$", description="From next_cursor")] = None,
) -> Response:
    before_id = int(cursor) if cursor else None  # the service pages from the newest past MAX_ID
    filters = RunFilter(
        task=task, status=status, trigger=trigger, since=as_utc(since, "since"), until=as_utc(until, "until")
    )
    runs = await _scheduler(request).list_runs(filters, limit=limit + 1, before_id=before_id)
    more = len(runs) > limit
    runs = runs[:limit]
    # The page is RunPage (the documented response_model), serialised straight from the records:
    # validating a model per row cost more than the query itself at a hundred rows.
    page = {
        "items": [{name: getattr(run, name) for name in RUN_OUT_FIELDS} for run in runs],
        "next_cursor": str(runs[-1].id) if more and runs else None,
    }
    return Response(pydantic_core.to_json(page), media_type="application/json")


@router.get("/runs/{run_id}", response_model=RunDetail, summary="One run, with its traceback", responses=READ_ERRORS)
async def get_run(run_id: RunId, request: Request, _: SchedulerViewer) -> RunDetail:
    run = await _scheduler(request).get_run(run_id)
    if run is None:
        raise not_found(f"run {run_id}")
    return RunDetail.of(run)


@router.get(
    "/stats", response_model=StatsOut, summary="Totals and per-task durations", responses=error_responses(401, 403)
)
async def stats(request: Request, _: SchedulerViewer) -> StatsOut:
    return StatsOut.of(await stats_cache(request).get())


@router.get(
    "/cron/preview",
    response_model=CronPreview,
    summary="Try a schedule out: its meaning in words and its next fire times",
    responses=error_responses(401, 403, 422),
)
async def cron_preview(
    request: Request,
    _: SchedulerViewer,
    cron: Annotated[str, Query(min_length=1, max_length=200, examples=["*/10 * * * *"])],
    timezone: Annotated[str, Query(min_length=1, max_length=64, description="IANA time zone")] = "UTC",
    count: Annotated[int, Query(ge=1, le=100, description="How many fire times")] = 5,
) -> CronPreview:
    service = _scheduler(request)
    try:
        schedule = check_schedule(cron, timezone)
    except TaskValidationError as exc:
        raise _invalid(exc) from None
    return CronPreview(
        cron=schedule.expression,
        timezone=schedule.timezone,
        description=words(schedule.expression),
        times=service.next_fires(schedule, count),
    )


@router.get(
    "/handlers", response_model=HandlerList, summary="Handlers a task can use", responses=error_responses(401, 403)
)
async def handlers(request: Request, _: SchedulerViewer) -> HandlerList:
    return HandlerList(items=_scheduler(request).handler_names())


@router.post(
    "/runs/{run_id}/cancel",
    response_model=RunDetail,
    status_code=202,
    summary="Cancel a running run, on whichever node executes it",
    description="The request is recorded on the run; the node executing it cancels the handler at its next "
    "heartbeat (MEDIABEAT_HEARTBEAT_SECONDS), or at once if it is this node. The handler's await points raise "
    "CancelledError; a crawl leaves its unfinished jobs queued for the next run. The run ends `cancelled` with "
    "`cancelled_by`. A handler that has not stopped after MEDIABEAT_CANCEL_GRACE_SECONDS is recorded cancelled "
    "anyway and its slot freed. 202 with the run as it is now; 409 if the run has already finished.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def cancel_run(run_id: RunId, request: Request, principal: RunCanceller) -> RunDetail:
    service = _scheduler(request)
    try:
        run = await service.cancel_run(run_id, by=principal.email)
    except RunNotFound:
        raise not_found(f"run {run_id}") from None
    except RunNotRunning as exc:
        raise ApiError(409, str(exc), code="run_finished", details={"status": exc.status}) from None
    _changed(request)
    await audit(request, principal, "run.cancel", target_type="run", target_id=run_id, details={"task": run.task})
    return RunDetail.of(run)


@router.get(
    "/pause",
    response_model=PauseOut,
    summary="Whether the scheduler is paused, cluster-wide",
    responses=error_responses(401, 403),
)
async def pause_state(request: Request, _: SchedulerViewer) -> PauseOut:
    return PauseOut.of(await _scheduler(request).pause_state())


@router.post(
    "/pause",
    response_model=PauseOut,
    summary="Pause the scheduler on every node",
    description="No scheduled, chained or retry run starts on any node (serve or worker) until resumed; runs "
    "already running go on, and manual runs still start. Takes effect on every node at once: each node's claim "
    "of due runs reads the switch. Idempotent; pausing again replaces the reason.",
    responses=error_responses(401, 403, 422),
)
async def pause(
    request: Request, principal: SchedulerPauser, body: Annotated[PauseIn | None, Body()] = None
) -> PauseOut:
    reason = body.reason if body is not None else None
    state = await _scheduler(request).pause(by=principal.email, reason=reason)
    await audit(request, principal, "scheduler.pause", details={"reason": state.reason})
    return PauseOut.of(state)


@router.post(
    "/resume",
    response_model=PauseOut,
    summary="Resume the scheduler on every node",
    description="What came due during the pause follows each task's misfire policy (run_once, skip, catch_up). "
    "Idempotent.",
    responses=error_responses(401, 403),
)
async def resume(request: Request, principal: SchedulerPauser) -> PauseOut:
    state = await _scheduler(request).resume(by=principal.email)
    await audit(request, principal, "scheduler.resume")
    return PauseOut.of(state)


@router.get(
    "/runs/{run_id}/logs",
    response_model=RunLog,
    summary="What a run logged",
    description="The log lines its handler and the crawler emitted at INFO and above (as far as "
    "MEDIABEAT_LOG_LEVEL lets them through), kept with the run when it ends, bounded by "
    "MEDIABEAT_RUN_LOG_MAX_CHARS, and deleted with the run by nightly-cleanup.",
    responses=READ_ERRORS,
)
async def run_logs(run_id: RunId, request: Request, _: SchedulerViewer) -> RunLog:
    run = await _scheduler(request).get_run(run_id)
    if run is None:
        raise not_found(f"run {run_id}")
    return RunLog(run_id=run.id, status=run.status, lines=run.log.split("\n") if run.log else [])
