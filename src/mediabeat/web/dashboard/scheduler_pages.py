"""The scheduler pages: the overview with its cards and task table, run history, one run and one task."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from mediabeat.domain.ids import clamp_id
from mediabeat.domain.scheduler import (
    FAILURE_STATUSES,
    NewTask,
    RunFilter,
    RunPoint,
    RunStatus,
    TaskNotFound,
    Trigger,
)
from mediabeat.domain.task_alerts import describe_rules
from mediabeat.schedule import CronError
from mediabeat.schedule.cron import words
from mediabeat.scheduler.service import SchedulerService
from mediabeat.web.api.scheduler import stats_cache
from mediabeat.web.dashboard.filters import RunStatusFilter, TriggerFilter
from mediabeat.web.dashboard.render import PageDenied, SchedulerPage, TaskEditorPage, render
from mediabeat.web.dashboard.view import FAILED, duration_chart

router = APIRouter(prefix="/app/admin", include_in_schema=False)

SPARKLINE_RUNS = 20
CHART_RUNS = 120
RUNS_PAGE = 50
# The schedules offered as one-click choices next to a cron field.
CRON_PRESETS = [
    ("*/10 * * * *", "Every 10 minutes"),
    ("0 * * * *", "Hourly"),
    ("0 3 * * *", "Daily at 03:00"),
    ("0 9 * * 1-5", "Weekdays at 09:00"),
    ("0 6 * * 1", "Mondays at 06:00"),
    ("0 0 1 * *", "Monthly on the 1st"),
]
NEW_TASK_CRON = "0 * * * *"


def _scheduler(request: Request) -> SchedulerService:
    service: SchedulerService = request.app.state.services.scheduler
    return service


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
async def admin_home(request: Request, user: SchedulerPage) -> HTMLResponse:
    return await scheduler_overview(request, user)


@router.get("/scheduler", response_class=HTMLResponse)
async def scheduler_overview(request: Request, user: SchedulerPage) -> HTMLResponse:
    service = _scheduler(request)
    # The same figures, from the same cache, as GET /api/v1/scheduler/stats that the page then polls.
    stats = await stats_cache(request).get()
    tasks = await service.list_tasks()
    sparks = await service.queries.recent_runs([t.id for t in tasks], per_task=SPARKLINE_RUNS)
    failing = [t for t in tasks if t.last_status in FAILURE_STATUSES]
    errors: dict[int, str | None] = {}
    for task in failing:
        last_failed = next((p for p in reversed(sparks.get(task.id, [])) if p.status in FAILED), None)
        run = await service.get_run(last_failed.id) if last_failed else None
        errors[task.id] = run.error if run else None
    cluster = request.app.state.services.cluster
    nodes = await cluster.list_nodes()
    leader = await cluster.leader()
    return render(
        request,
        "scheduler.html",
        {
            "user": user,
            "title": "Scheduler",
            "active": "scheduler",
            "stats": stats,
            "tasks": tasks,
            "words": {t.id: words(t.cron) for t in tasks},
            "sparks": sparks,
            # Runs that found nothing to do are counted, not kept: the sparkline's caption shows them.
            "task_stats": {t.task_id: t for t in stats.tasks},
            "failing": failing,
            "errors": errors,
            "handlers": set(service.handler_names()),
            "nodes": nodes,
            "leader": leader,
        },
    )


def _instant(value: str | None, field: str) -> datetime | None:
    """A datetime-local value from the filter form, read as UTC; a bad one is a 422 page."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset that moves it out of datetime's range
        raise PageDenied(422, f"{field}: give a date and time like 2026-01-31T14:00") from None


@router.get("/scheduler/runs", response_class=HTMLResponse)
async def run_history(
    request: Request,
    user: SchedulerPage,
    task: Annotated[str | None, Query(max_length=100)] = None,
    status: RunStatusFilter = None,
    trigger: TriggerFilter = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]*$")] = None,
) -> HTMLResponse:
    service = _scheduler(request)
    filters = RunFilter(
        task=task or None,
        status=status,
        trigger=trigger,
        since=_instant(since, "since"),
        until=_instant(until, "until"),
    )
    before = clamp_id(int(cursor)) if cursor else None
    runs = await service.list_runs(filters, limit=RUNS_PAGE + 1, before_id=before)
    more = len(runs) > RUNS_PAGE
    runs = runs[:RUNS_PAGE]
    query: dict[str, Any] = {
        "task": filters.task or "",
        "status": filters.status or "",
        "trigger": filters.trigger or "",
        "since": since or "",
        "until": until or "",
    }
    return render(
        request,
        "runs.html",
        {
            "user": user,
            "title": "Run history",
            "active": "runs",
            "runs": runs,
            "filters": query,
            "filtered": any(query.values()),
            "next_cursor": str(runs[-1].id) if more and runs else None,
            "paged": cursor is not None,
            "task_names": [t.name for t in await service.list_tasks()],
            "statuses": [s.value for s in RunStatus],
            "triggers": [t.value for t in Trigger],
        },
    )


@router.get("/scheduler/runs/{run_id}", response_class=HTMLResponse)
async def run_detail(request: Request, user: SchedulerPage, run_id: int) -> HTMLResponse:
    run = await _scheduler(request).get_run(run_id)  # None for an id out of range too
    if run is None:
        raise PageDenied(404, f"There is no run {run_id}. It may have been removed by the nightly cleanup.")
    context = {"user": user, "title": f"Run {run.id} of {run.task}", "active": "runs", "run": run}
    return render(request, "run.html", context)


@router.get("/scheduler/new", response_class=HTMLResponse)
async def new_task(request: Request, user: TaskEditorPage) -> HTMLResponse:
    service = _scheduler(request)
    handlers = [{"name": n, "description": service.queries.describe_handler(n)} for n in service.handler_names()]
    return render(
        request,
        "task_new.html",
        {
            "user": user,
            "title": "New task",
            "active": "scheduler",
            "defaults": NewTask(name="", handler="", cron=NEW_TASK_CRON),
            "words": words(NEW_TASK_CRON),
            "handlers": handlers,
            "tasks": [t.name for t in await service.list_tasks()],
            "presets": CRON_PRESETS,
        },
    )


@router.get("/scheduler/tasks/{name}", response_class=HTMLResponse)
async def task_detail(request: Request, user: SchedulerPage, name: str) -> HTMLResponse:
    service = _scheduler(request)
    try:
        task = await service.get_task_by_name(name)
    except TaskNotFound:
        raise PageDenied(404, f"There is no task called {name!r}.") from None
    try:
        upcoming = await service.upcoming(task, 10)
        schedule_error = None
    except CronError as exc:
        upcoming, schedule_error = [], str(exc)
    points = (await service.queries.recent_runs([task.id], per_task=CHART_RUNS))[task.id]
    tasks = await service.list_tasks()
    chains = await service.task_chains(task.id)
    alert_rules = await service.alert_rules(task.id)
    return render(
        request,
        "task.html",
        {
            "user": user,
            "title": f"Task {task.name}",
            "active": "scheduler",
            "task": task,
            "words": words(task.cron),
            "upcoming": upcoming,
            "schedule_error": schedule_error,
            "chart": duration_chart(points),
            "chart_counts": _outcome_counts(points),
            "recent": list(reversed(points[-10:])),
            "chains": chains,
            "other_tasks": [t.name for t in tasks if t.id != task.id],
            "presets": CRON_PRESETS,
            "handler_ok": task.handler in service.handler_names(),
            "alert_rules": alert_rules,
            "alert_words": describe_rules(alert_rules),
            "muted": alert_rules.muted(service.clock.now()),
            "alerts": await service.recent_alerts(task.id, limit=10),
        },
    )


def _outcome_counts(points: list[RunPoint]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for point in points:
        counts[point.status] = counts.get(point.status, 0) + 1
    return counts
