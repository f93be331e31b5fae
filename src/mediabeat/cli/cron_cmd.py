"""`mediabeat cron`: try cron expressions out before putting them on a task."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Annotated

import typer

from mediabeat.cli.common import CliError
from mediabeat.schedule import CronError, parse_schedule
from mediabeat.schedule.cron import load_zone

app = typer.Typer(help="Check cron expressions: next fire times and meaning in words.", no_args_is_help=True)

TimezoneOption = Annotated[str, typer.Option("--timezone", "-z", help="IANA time zone, e.g. Europe/Berlin")]


@app.command("next")
def next_times(
    expression: Annotated[str, typer.Argument(help='Cron expression, e.g. "0 3 * * *" or @hourly')],
    timezone: TimezoneOption = "UTC",
    after: Annotated[
        str | None, typer.Option(help="ISO 8601 instant; without an offset it is read in --timezone (default: now)")
    ] = None,
    count: Annotated[int, typer.Option(min=1, max=1000, help="How many fire times")] = 5,
) -> None:
    """Print the next COUNT fire times strictly after --after, one per line, with their UTC offset."""
    try:
        schedule = parse_schedule(expression, timezone)
        start = _parse_after(after, timezone)
    except CronError as exc:
        raise CliError(str(exc), exit_code=2) from None
    for fire in itertools.islice(schedule.fire_times(start), count):
        typer.echo(fire.isoformat())


@app.command("explain")
def explain(
    expression: Annotated[str, typer.Argument(help="Cron expression")],
    timezone: TimezoneOption = "UTC",
) -> None:
    """Print what a cron expression means, in words."""
    try:
        schedule = parse_schedule(expression, timezone)
        typer.echo(schedule.describe())
    except CronError as exc:
        raise CliError(str(exc), exit_code=2) from None


def _parse_after(after: str | None, timezone: str) -> datetime:
    zone = load_zone(timezone)
    if after is None:
        return datetime.now(zone)
    try:
        value = datetime.fromisoformat(after)
    except ValueError:
        raise CronError(f"--after {after!r} is not an ISO 8601 date-time such as 2026-01-31T12:00:00+00:00") from None
    return value if value.tzinfo else value.replace(tzinfo=zone)
