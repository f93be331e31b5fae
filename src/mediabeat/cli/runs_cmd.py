"""`mediabeat runs` and `mediabeat stats`: the run history and its figures."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from mediabeat.app import Services
from mediabeat.cli.common import CliError, cli_actor, print_json, table, when, with_services
from mediabeat.domain.jsonable import jsonable
from mediabeat.domain.scheduler import (
    RunFilter,
    RunRecord,
    RunStatus,
    Trigger,
    member_or_none,
)

RUN_STATUSES = [status.value for status in RunStatus]
RUN_TRIGGERS = [trigger.value for trigger in Trigger]

app = typer.Typer(help="Run history.", no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]


@app.command("list")
def list_runs(
    task: Annotated[str | None, typer.Option(help="Only this task's runs")] = None,
    status: Annotated[str | None, typer.Option(help=f"One of: {', '.join(RUN_STATUSES)}")] = None,
    trigger: Annotated[
        str | None,
        typer.Option(help="schedule, manual, dependency (a run chained after another task) or retry"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List runs, newest first (`runs show ID` adds the traceback)."""
    if status is not None and status not in RUN_STATUSES:
        raise CliError(f"--status {status!r} is not one of {', '.join(RUN_STATUSES)}", exit_code=2)
    if trigger is not None and trigger not in RUN_TRIGGERS:
        raise CliError(f"--trigger {trigger!r} is not one of {', '.join(RUN_TRIGGERS)}", exit_code=2)
    filters = RunFilter(task=task, status=member_or_none(RunStatus, status), trigger=member_or_none(Trigger, trigger))
    runs = with_services(lambda s: s.scheduler.list_runs(filters, limit=limit))
    if as_json:
        print_json([jsonable(r) for r in runs])
        return
    table(
        ["id", "task", "trigger", "status", "scheduled for", "started", "ms", "error"],
        [
            [
                r.id,
                r.task,
                r.trigger,
                r.status,
                when(r.scheduled_for),
                when(r.started_at),
                r.duration_ms,
                (r.error or "")[:60],
            ]
            for r in runs
        ],
    )


@app.command("show")
def show(run_id: int, as_json: JsonFlag = False) -> None:
    """Show one run in full, with its error and traceback."""
    run = with_services(lambda s: s.scheduler.get_run(run_id))  # None for an id out of range
    if run is None:
        raise CliError(f"no run with id {run_id}", exit_code=2)
    data = jsonable(run)
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        if key not in ("traceback", "log"):
            typer.echo(f"{key:>14}: {value}")
    if run.traceback:
        typer.echo(run.traceback)


@app.command("logs")
def logs(run_id: int, as_json: JsonFlag = False) -> None:
    """Print what a run logged (INFO and above, kept when it ends; bounded by MEDIABEAT_RUN_LOG_MAX_CHARS)."""
    run = with_services(lambda s: s.scheduler.get_run(run_id))
    if run is None:
        raise CliError(f"no run with id {run_id}", exit_code=2)
    lines = run.log.split("\n") if run.log else []
    if as_json:
        print_json({"run_id": run.id, "status": run.status.value, "lines": lines})
        return
    if not lines:
        typer.echo(
            "(still running: its log is kept when it ends)" if run.status is RunStatus.RUNNING else "(no log lines)"
        )
    for line in lines:
        typer.echo(line)


@app.command("cancel")
def cancel(run_id: int, as_json: JsonFlag = False) -> None:
    """Cancel a running run, on whichever node (serve or worker) executes it.

    The request is written on the run; the node executing it cancels the handler at its next
    heartbeat, and the run ends `cancelled` with your name. A handler that does not stop within
    MEDIABEAT_CANCEL_GRACE_SECONDS is recorded cancelled anyway and its slot freed. Exit status 1
    if the run has already finished, 2 if there is no such run.
    """
    by = cli_actor().name

    async def body(services: Services) -> RunRecord:
        return await services.scheduler.cancel_run(run_id, by=by)

    run = with_services(body)
    if as_json:
        print_json(jsonable(run))
    elif run.status is RunStatus.CANCELLED:
        typer.echo(f"run {run.id} of {run.task} cancelled: {run.error}")
    else:
        typer.echo(
            f"cancel requested for run {run.id} of {run.task} on node {run.node_id}; it stops at its next heartbeat"
        )


def stats(as_json: JsonFlag = False) -> None:
    """Show scheduler statistics: tasks, runs, outcomes, and per-task durations."""
    figures = with_services(lambda s: s.scheduler.stats())
    if as_json:
        data = asdict(figures)
        print_json(data)
        return
    typer.echo(
        f"tasks {figures.total_tasks} ({figures.enabled_tasks} enabled), runs {figures.total_runs}: "
        f"{figures.succeeded_runs} succeeded, {figures.failed_runs} failed, {figures.running_runs} running, "
        f"{figures.runs_last_24h} in the last 24 h"
    )
    table(
        ["task", "enabled", "runs", "last run", "status", "p50 ms", "p95 ms", "next run"],
        [
            [
                t.name,
                "yes" if t.enabled else "no",
                t.runs,
                when(t.last_run_at),
                t.last_status or "-",
                _ms(t.p50_ms),
                _ms(t.p95_ms),
                when(t.next_run_at),
            ]
            for t in figures.tasks
        ],
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
