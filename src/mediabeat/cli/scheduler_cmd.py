"""`mediabeat scheduler`: pause and resume the scheduler on every node, and show whether it is paused."""

from __future__ import annotations

from typing import Annotated

import typer

from mediabeat.cli.common import cli_actor, print_json, when, with_services
from mediabeat.domain.jsonable import jsonable
from mediabeat.domain.scheduler import SchedulerPause

app = typer.Typer(
    help="The scheduler of the whole cluster: pause, resume, status (no restart needed).", no_args_is_help=True
)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]


def _print(state: SchedulerPause, *, as_json: bool) -> None:
    if as_json:
        print_json(jsonable(state))
        return
    if state.paused:
        typer.echo(
            f"paused by {state.changed_by} at {when(state.changed_at)}: {state.reason or 'no reason given'}\n"
            "no scheduled, chained or retry run starts on any node; manual runs still do"
        )
    else:
        since = f" (resumed by {state.changed_by} at {when(state.changed_at)})" if state.changed_by else ""
        typer.echo(f"running{since}")


@app.command("pause")
def pause(
    reason: Annotated[str | None, typer.Option(help="Why, shown on every dashboard page while paused")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Pause the scheduler on every node (serve and worker) at once.

    No scheduled, chained or retry run starts anywhere until `mediabeat scheduler resume`.
    Runs already running go on (`mediabeat runs cancel ID` stops one); manual runs
    (`mediabeat tasks run`, the API, the dashboard) still start.
    """
    by = cli_actor().name
    _print(with_services(lambda s: s.scheduler.pause(by=by, reason=reason)), as_json=as_json)


@app.command("resume")
def resume(as_json: JsonFlag = False) -> None:
    """Resume the scheduler on every node; what came due meanwhile follows each task's misfire policy."""
    by = cli_actor().name
    _print(with_services(lambda s: s.scheduler.resume(by=by)), as_json=as_json)


@app.command("status")
def status(as_json: JsonFlag = False) -> None:
    """Say whether the scheduler is paused, by whom and why."""
    _print(with_services(lambda s: s.scheduler.pause_state()), as_json=as_json)
