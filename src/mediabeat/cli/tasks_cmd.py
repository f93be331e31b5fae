"""`mediabeat tasks`: list, inspect, enable, disable, reschedule and run scheduled tasks."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mediabeat.app import Services
from mediabeat.cli.common import CliError, print_json, table, when, with_services
from mediabeat.db.stores.records import TaskRecord, jsonable
from mediabeat.db.stores.scheduler import RunFilter
from mediabeat.schedule import CronError, describe
from mediabeat.scheduler.registry import UnknownHandler
from mediabeat.scheduler.service import OverlapForbidden, TaskChanges, TaskNotFound, TaskValidationError

app = typer.Typer(help="Scheduled tasks: list, show, enable, disable, set, run.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]
NameArg = Annotated[str, typer.Argument(help="Task name, e.g. nightly-cleanup")]


def task_json(task: TaskRecord) -> dict[str, Any]:
    data = jsonable(task)
    try:
        data["cron_description"] = describe(task.cron)
    except CronError:
        data["cron_description"] = None
    return data


@app.command("list")
def list_tasks(as_json: JsonFlag = False) -> None:
    """List every task with its schedule, last run and next run."""
    tasks = with_services(lambda s: s.scheduler.list_tasks())
    if as_json:
        print_json([task_json(t) for t in tasks])
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
        return {
            **task_json(task),
            "upcoming": [t.isoformat() for t in upcoming],
            "recent_runs": [jsonable(r) for r in runs],
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
        "last_run_at",
        "last_status",
        "next_run_at",
    ):
        typer.echo(f"{key:>16}: {data[key]}")
    typer.echo(f"{'upcoming':>16}: " + ", ".join(data["upcoming"]))
    for run in data["recent_runs"]:
        typer.echo(
            f"  run {run['id']}: {run['status']} {run['started_at']} {run['duration_ms']} ms {run['error'] or ''}"
        )


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
) -> None:
    """Change a task's schedule or policies; the next run is recomputed."""
    _set(
        name,
        TaskChanges(cron=cron, timezone=timezone, misfire_policy=misfire, overlap_policy=overlap, timeout_s=timeout),
    )


@app.command("run")
def run_task(name: NameArg, as_json: JsonFlag = False) -> None:
    """Run a task now in this process, wait for it, and print the finished run."""

    async def body(services: Services) -> Any:
        try:
            return await services.scheduler.run_now_and_wait(name, triggered_by="cli")
        except (TaskNotFound, UnknownHandler) as exc:
            raise CliError(str(exc), exit_code=2) from None
        except OverlapForbidden as exc:
            raise CliError(str(exc)) from None

    run = with_services(body)
    if as_json:
        print_json(jsonable(run))
    else:
        typer.echo(f"run {run.id} of {run.task}: {run.status} in {run.duration_ms} ms")
        if run.result:
            typer.echo("result: " + ", ".join(f"{k}={v}" for k, v in run.result.items()))
        if run.error:
            typer.echo(f"error: {run.error}")
    if run.status != "succeeded":
        raise typer.Exit(1)


def _set(name: str, changes: TaskChanges) -> None:
    async def body(services: Services) -> TaskRecord:
        task = await _task(services, name)
        try:
            return await services.scheduler.update_task(task.id, changes)
        except TaskValidationError as exc:
            raise CliError(str(exc), exit_code=2) from None

    task = with_services(body)
    state = "enabled" if task.enabled else "disabled"
    typer.echo(f"{task.name}: {task.cron} ({task.timezone}), {state}, next run {when(task.next_run_at)}")


async def _task(services: Services, name: str) -> TaskRecord:
    try:
        return await services.scheduler.get_task_by_name(name)
    except TaskNotFound as exc:
        raise CliError(str(exc), exit_code=2) from None
