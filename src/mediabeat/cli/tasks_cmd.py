"""`mediabeat tasks`: list, inspect, enable, disable, reschedule and run scheduled tasks."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

import typer

from mediabeat.app import Services, build_registry
from mediabeat.cli import task_alerts_cmd as alerting
from mediabeat.cli.common import CliError, print_json, table, when, with_services, working
from mediabeat.db.engine import Database
from mediabeat.domain.jsonable import jsonable
from mediabeat.domain.scheduler import (
    MisfirePolicy,
    NewTask,
    OverlapForbidden,
    OverlapPolicy,
    RunFilter,
    RunStatus,
    TaskChains,
    TaskChanges,
    TaskRecord,
)
from mediabeat.schedule.cron import words
from mediabeat.scheduler.handoff import HandedRun
from mediabeat.settings import load_settings

app = typer.Typer(help="Scheduled tasks: list, show, enable, disable, set, run, alerts, mute.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]
NameArg = Annotated[str, typer.Argument(help="Task name, e.g. nightly-cleanup")]


def task_json(task: TaskRecord, chains: TaskChains) -> dict[str, Any]:
    return {
        **jsonable(task),
        "cron_description": words(task.cron),
        "after_task_id": chains.after_task_id,
        "after": chains.after,
        "on_failure_of": chains.on_failure_of,
        "downstream": [{"name": link.downstream, "kind": link.kind.value} for link in chains.downstream],
    }


@app.command("list")
def list_tasks(as_json: JsonFlag = False) -> None:
    """List every task with its schedule, last run and next run."""

    async def body(services: Services) -> tuple[list[TaskRecord], dict[int, TaskChains]]:
        return await services.scheduler.list_tasks(), await services.scheduler.all_chains()

    tasks, chains = with_services(body)
    if as_json:
        print_json([task_json(t, chains.get(t.id, TaskChains())) for t in tasks])
        return
    table(
        ["id", "name", "cron", "timezone", "enabled", "last run", "status", "next run"],
        [
            [
                t.id,
                t.name,
                t.cron,
                t.timezone,
                "yes" if t.enabled else "no",
                when(t.last_run_at),
                t.last_status or "-",
                when(t.next_run_at),
            ]
            for t in tasks
        ],
    )


@app.command("show")
def show(name: NameArg, as_json: JsonFlag = False) -> None:
    """Show one task: settings, the next fire times and recent runs."""

    async def body(services: Services) -> dict[str, Any]:
        task = await _task(services, name)
        upcoming = await services.scheduler.upcoming(task, 5)
        runs = await services.scheduler.list_runs(RunFilter(task=name), limit=10)
        rules = await services.scheduler.alert_rules(task.id)
        return {
            **task_json(task, await services.scheduler.task_chains(task.id)),
            "upcoming": [t.isoformat() for t in upcoming],
            "recent_runs": [jsonable(r) for r in runs],
            "alert_rules": {**jsonable(rules), "muted": rules.muted(services.clock.now())},
            "alerts_in_words": alerting.rules_lines(rules, services.clock.now()),
        }

    data = with_services(body)
    if as_json:
        print_json(data)
        return
    for key in (
        "name",
        "description",
        "handler",
        "cron",
        "cron_description",
        "timezone",
        "enabled",
        "misfire_policy",
        "overlap_policy",
        "timeout_s",
        "max_retries",
        "retry_backoff_s",
        "retry_backoff_max_s",
        "retry_at",
        "priority",
        "keep_empty_runs",
        "last_empty_run_at",
        "after",
        "on_failure_of",
        "last_run_at",
        "last_status",
        "next_run_at",
    ):
        value = data[key]
        typer.echo(f"{key:>16}: " + ((", ".join(value) or "-") if isinstance(value, list) else str(value)))
    downstream = [f"{d['name']} (on {d['kind']})" for d in data["downstream"]]
    typer.echo(f"{'downstream':>16}: " + (", ".join(downstream) or "-"))
    typer.echo(f"{'upcoming':>16}: " + ", ".join(data["upcoming"]))
    typer.echo(f"{'alerts':>16}: " + f"\n{'':>18}".join(data["alerts_in_words"]))
    for run in data["recent_runs"]:
        typer.echo(
            f"  run {run['id']}: {run['status']} {run['started_at']} {run['duration_ms']} ms {run['error'] or ''}"
        )


MaxRetries = Annotated[
    int | None,
    typer.Option(
        help="Retry a failed or timed-out scheduled run this many times (0-100) before the next occurrence; "
        "alerts wait until the retries are used up (default 0)"
    ),
]
RetryBackoff = Annotated[
    int | None, typer.Option(help="Seconds before the first retry, doubling for each next one (default 60)")
]
RetryBackoffMax = Annotated[int | None, typer.Option(help="Longest wait between retries, in seconds (default 3600)")]
Priority = Annotated[
    int | None,
    typer.Option(
        help="-1000 to 1000 (default 0): when more runs are due than a node may start "
        "(MEDIABEAT_MAX_CONCURRENT_RUNS), higher priority starts first, then the earlier due time"
    ),
]
KeepEmptyRuns = Annotated[
    bool | None,
    typer.Option(
        "--keep-empty-runs/--count-empty-runs",
        help="Keep the rows of scheduled runs that find nothing to do (an empty queue), or only count them "
        "on the task (the default; MEDIABEAT_KEEP_EMPTY_RUNS keeps them for every task)",
    ),
]
After = Annotated[
    list[str] | None,
    typer.Option(
        help="Also run after this task succeeds (a chain). Repeat it for a fan-in: run once all of them have "
        "succeeded, each at least once since this task last ran so. With set, the list replaces the old one; "
        "--after '' removes them"
    ),
]
OnFailureOf = Annotated[
    list[str] | None,
    typer.Option(
        "--on-failure-of",
        help="Also run when this task fails or times out, its retries used up (e.g. a notifier); repeatable. "
        "With set, the list replaces the old one; --on-failure-of '' removes them",
    ),
]


def _names(values: list[str] | None) -> tuple[str, ...] | None:
    """Repeated --after/--on-failure-of values; None when the option was not given."""
    return tuple(values) if values else None


@app.command("enable")
def enable(name: NameArg) -> None:
    """Enable a task: it runs at its next occurrence."""
    _set(name, TaskChanges(enabled=True))


@app.command("disable")
def disable(name: NameArg) -> None:
    """Disable a task: it stops running on schedule (run-now still works)."""
    _set(name, TaskChanges(enabled=False))


@app.command("set")
def set_task(
    name: NameArg,
    cron: Annotated[str | None, typer.Option(help="New cron expression")] = None,
    timezone: Annotated[str | None, typer.Option(help="New IANA time zone")] = None,
    misfire: Annotated[str | None, typer.Option(help="run_once, skip or catch_up")] = None,
    overlap: Annotated[str | None, typer.Option(help="forbid or allow")] = None,
    timeout: Annotated[int | None, typer.Option(help="Timeout in seconds")] = None,
    after: After = None,
    on_failure_of: OnFailureOf = None,
    max_retries: MaxRetries = None,
    retry_backoff: RetryBackoff = None,
    retry_backoff_max: RetryBackoffMax = None,
    priority: Priority = None,
    keep_empty_runs: KeepEmptyRuns = None,
    alert_after_failures: alerting.AfterFailures = None,
    alert_late: alerting.AlertLate = None,
    alert_missing: alerting.AlertMissing = None,
    alert_slower_than: alerting.SlowerThan = None,
    alert_slower_than_p95: alerting.SlowerThanP95 = None,
    mute_until: alerting.MuteUntil = None,
    alert_webhook: alerting.AlertWebhook = None,
    alert_email: alerting.AlertEmail = None,
) -> None:
    """Change a task's schedule, policies, retries, priority or alert rules; the next run is recomputed."""
    alerts = alerting.AlertOptions(
        alert_after_failures,
        alert_late,
        alert_missing,
        alert_slower_than,
        alert_slower_than_p95,
        mute_until,
        alert_webhook,
        alert_email,
    )
    _set(
        name,
        TaskChanges(
            cron=cron,
            timezone=timezone,
            misfire_policy=misfire,
            overlap_policy=overlap,
            timeout_s=timeout,
            after=_names(after),
            on_failure_of=_names(on_failure_of),
            max_retries=max_retries,
            retry_backoff_s=retry_backoff,
            retry_backoff_max_s=retry_backoff_max,
            priority=priority,
            keep_empty_runs=keep_empty_runs,
        ),
        alerts,
    )


@app.command("create")
def create(
    name: NameArg,
    handler: Annotated[str, typer.Option(help="What it runs: see `mediabeat tasks handlers`")],
    cron: Annotated[str, typer.Option(help='Cron expression, e.g. "30 6 * * MON-FRI"')],
    timezone: Annotated[str, typer.Option(help="IANA time zone")] = "UTC",
    description: Annotated[str, typer.Option(help="What the task is for")] = "",
    misfire: Annotated[str, typer.Option(help="run_once, skip or catch_up")] = MisfirePolicy.RUN_ONCE.value,
    overlap: Annotated[str, typer.Option(help="forbid or allow")] = OverlapPolicy.FORBID.value,
    timeout: Annotated[int, typer.Option(help="Timeout in seconds")] = 3600,
    after: After = None,
    on_failure_of: OnFailureOf = None,
    params: Annotated[str | None, typer.Option(help="Handler parameters as a JSON object")] = None,
    max_retries: MaxRetries = None,
    retry_backoff: RetryBackoff = None,
    retry_backoff_max: RetryBackoffMax = None,
    priority: Priority = None,
    keep_empty_runs: KeepEmptyRuns = None,
    alert_after_failures: alerting.AfterFailures = None,
    alert_late: alerting.AlertLate = None,
    alert_missing: alerting.AlertMissing = None,
    alert_slower_than: alerting.SlowerThan = None,
    alert_slower_than_p95: alerting.SlowerThanP95 = None,
    mute_until: alerting.MuteUntil = None,
    alert_webhook: alerting.AlertWebhook = None,
    alert_email: alerting.AlertEmail = None,
) -> None:
    """Create a task that runs a registered handler on a schedule, with alert rules if given."""
    alerts = alerting.AlertOptions(
        alert_after_failures, alert_late, alert_missing, alert_slower_than, alert_slower_than_p95
    )
    alerts = dataclasses.replace(alerts, mute_until=mute_until, webhook=alert_webhook, email=alert_email)
    spec = NewTask(
        name=name,
        handler=handler,
        cron=cron,
        timezone=timezone,
        description=description,
        misfire_policy=misfire,
        overlap_policy=overlap,
        timeout_s=timeout,
        after=_names(after) or (),
        on_failure_of=_names(on_failure_of) or (),
        params=_json_object(params),
        max_retries=max_retries or 0,
        retry_backoff_s=retry_backoff or 60,
        retry_backoff_max_s=retry_backoff_max or 3600,
        priority=priority or 0,
        keep_empty_runs=bool(keep_empty_runs),
    )
    _create(spec, alerts)


def _create(spec: NewTask, alerts: alerting.AlertOptions) -> None:
    async def body(services: Services) -> TaskRecord:
        # The rules are checked before the task is created: a bad one creates nothing.
        return await services.scheduler.create_task(spec, alerts=alerts.changes(services.clock.now()))

    task = with_services(body)
    typer.echo(f"created {task.name}: {task.cron} ({task.timezone}), next run {when(task.next_run_at)}")


@app.command("delete")
def delete(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Delete a task and its run history."""
    if not yes and not typer.confirm(f"Delete task {name!r} and all its runs?", default=False):
        raise CliError("not deleted: confirm, or pass --yes")

    async def body(services: Services) -> None:
        task = await _task(services, name)
        await services.scheduler.delete_task(task.id)

    with_services(body)
    typer.echo(f"deleted {name}")


@app.command("handlers")
def handlers(as_json: JsonFlag = False) -> None:
    """List the handlers a task can run (the task templates)."""
    settings = load_settings()
    names = build_registry(settings, Database(settings.database_url)).names()
    if as_json:
        print_json(names)
        return
    for handler_name in names:
        typer.echo(handler_name)


def _json_object(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--params is not valid JSON: {exc.msg} at position {exc.pos}", exit_code=2) from None
    if not isinstance(value, dict):
        raise CliError('--params must be a JSON object, such as {"org": "newsroom"}', exit_code=2)
    return value


@app.command("run")
def run_task(name: NameArg, as_json: JsonFlag = False) -> None:
    """Run a task now and print the finished run: on a running node (serve or worker) if any, else here."""

    async def body(services: Services) -> HandedRun | OverlapForbidden:
        try:
            await services.scheduler.get_task_by_name(name)  # a wrong name is an error before any "running" line
            plan = await services.handoff.plan()
            pause = await services.scheduler.pause_state()
            if pause.paused:
                typer.echo(
                    f"note: the scheduler is paused ({pause.reason or 'no reason given'}); manual runs still start",
                    err=True,
                )
            if plan.node_id is None:
                typer.echo("no node is running: running it in this process", err=True)
            else:
                typer.echo(f"handing the run to node {plan.node_id} and waiting for it", err=True)
            with working(f"running {name}…"):
                return await services.handoff.run(name, triggered_by="cli", plan=plan)
        except OverlapForbidden as exc:
            return exc  # not an error: the run was skipped, as a scheduled one would be

    outcome = with_services(body)
    if isinstance(outcome, OverlapForbidden):
        _print_skipped(name, outcome, as_json=as_json)
        return
    _print_run(outcome, as_json=as_json)
    if outcome.run.status.is_failure:
        raise typer.Exit(1)


def _print_skipped(name: str, exc: OverlapForbidden, *, as_json: bool) -> None:
    reason = f"skipped: {exc}"
    if as_json:
        print_json({"task": name, "status": RunStatus.SKIPPED, "error": reason, "running_run_id": exc.running_run_id})
    else:
        typer.echo(reason)


def _print_run(outcome: HandedRun, *, as_json: bool) -> None:
    run = outcome.run
    if as_json:
        print_json(jsonable(run))
        return
    where = "in this process" if outcome.ran_on is None else f"on node {outcome.ran_on}"
    typer.echo(f"run {run.id} of {run.task}: {run.status} in {run.duration_ms} ms, {where}")
    if run.result:
        typer.echo("result: " + ", ".join(f"{k}={v}" for k, v in run.result.items()))
    if run.error:
        label = "reason" if run.status is RunStatus.SKIPPED else "error"
        typer.echo(f"{label}: {run.error}")


def _set(name: str, changes: TaskChanges, alerts: alerting.AlertOptions | None = None) -> None:
    async def body(services: Services) -> TaskRecord:
        task = await _task(services, name)
        if alerts is not None:
            await alerting.apply_alert_options(services, task.id, alerts)
        return await services.scheduler.update_task(task.id, changes)

    task = with_services(body)
    state = "enabled" if task.enabled else "disabled"
    typer.echo(f"{task.name}: {task.cron} ({task.timezone}), {state}, next run {when(task.next_run_at)}")


async def _task(services: Services, name: str) -> TaskRecord:
    return await services.scheduler.get_task_by_name(name)


app.command("alerts")(alerting.alerts)
app.command("mute")(alerting.mute)
app.command("unmute")(alerting.unmute)
