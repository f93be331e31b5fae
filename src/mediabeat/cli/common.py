"""Helpers shared by the CLI commands: settings, services, output."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from typer.core import TyperGroup

from mediabeat.app import Services, build_services
from mediabeat.db.engine import database_location, describe_db_error
from mediabeat.domain.content import Actor, Conflict, ContentError
from mediabeat.domain.invalid import describe
from mediabeat.domain.scheduler import RunNotFound, RunNotRunning, TaskConflict, TaskNotFound, TaskValidationError
from mediabeat.logs import configure_logging
from mediabeat.scheduler.registry import UnknownHandler
from mediabeat.settings import Settings, load_settings, unknown_variables

T = TypeVar("T")
UNBOUNDED_WIDTH = 1_000_000  # a table printed without a terminal is as wide as its widest row
console = Console()
err_console = Console(stderr=True)


# The exit statuses, one rule for every command (README.md, "The command line"):
EXIT_FAILED = 1  # the work failed, or the current state refuses a well-formed request (already exists, ...)
EXIT_BAD_INPUT = 2  # what was typed is wrong: a value that breaks a rule, or a name or id that matches nothing

# What a service raises when it refuses a request; with_services turns each into a CliError.
REFUSALS = (ContentError, TaskNotFound, RunNotFound, RunNotRunning, TaskValidationError, UnknownHandler)


class CliError(Exception):
    """A failure the user can act on; exit_code EXIT_BAD_INPUT (2) means bad input."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def exit_status(exc: Exception) -> int:
    """The exit status for a service's refusal.

    A conflict with the current state (an organisation, monitor, user or task of that name exists
    already; a job that is not failed; a run that has finished; a task with a run in flight) is 1:
    the input is right and may succeed later. A value that breaks a rule, or a name or id that
    matches nothing, is 2: the command line itself must change. A handler missing from this
    process is 1: the task is right, this process cannot run it.
    """
    if isinstance(exc, Conflict | TaskConflict | RunNotRunning | UnknownHandler):
        return EXIT_FAILED
    if isinstance(exc, ContentError | TaskNotFound | RunNotFound | TaskValidationError):
        return EXIT_BAD_INPUT
    return EXIT_FAILED


class CommandGroup(TyperGroup):
    """The `mediabeat` group: an option or argument that fails validation says what it accepts.

    Typer validates each parameter with pydantic and shows its first message as is ("Input should
    be a valid integer, unable to parse string as an integer"); every subcommand runs inside this
    group's invoke, so that message is reworded here, once, for all of them.
    """

    def invoke(self, ctx: Any) -> Any:  # Typer's vendored click.Context, which it does not export
        try:
            return super().invoke(ctx)
        except typer.BadParameter as exc:
            reword_bad_parameter(exc)
            raise


def reword_bad_parameter(exc: typer.BadParameter) -> None:
    """Replace the validator's wording of `exc` with what the parameter accepts and what it got."""
    errors = getattr(exc.__cause__, "errors", None)
    found = errors() if callable(errors) else None
    if isinstance(found, list) and found and isinstance(found[0], dict):
        exc.message = describe(found[0])


def setup_logging(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)
    for sentence in unknown_variables():  # a misspelt setting would otherwise be ignored unseen
        logging.getLogger("mediabeat").warning("%s: it is ignored (`mediabeat config` lists every setting)", sentence)


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(_await(coro))


async def _await(coro: Awaitable[T]) -> T:
    return await coro


@asynccontextmanager
async def open_services(settings: Settings | None = None) -> AsyncIterator[Services]:
    services = build_services(settings or load_settings())
    try:
        yield services
    finally:
        await services.close()


def with_services(fn: Callable[[Services], Awaitable[T]]) -> T:
    """Run `fn` with freshly built services, closing them afterwards; a service's refusal is a CliError."""

    async def body() -> T:
        async with open_services() as services:
            return await fn(services)

    try:
        return run(body())
    except REFUSALS as exc:
        raise CliError(str(exc), exit_code=exit_status(exc)) from None


def cli_actor() -> Actor:
    """Who runs this command, for the audit record: `cli:<os user>`."""
    try:
        return Actor.cli(getpass.getuser())
    except (OSError, KeyError):  # no login name in the environment and no passwd entry (some containers)
        return Actor.cli("unknown")


def schema_hint(exc: sa.exc.DBAPIError) -> str:
    """One line on a database error, naming the database, so a CLI run against the wrong one shows it."""
    text = str(getattr(exc, "orig", exc))
    settings_url = ""
    try:
        settings_url = load_settings().database_url
    except Exception:  # settings were already loaded once; this only decorates the message
        settings_url = ""
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        where = f" at {database_location(settings_url)}" if settings_url else ""
        return (
            f"the database{where} has no MediaBeat schema yet: run `mediabeat db upgrade` first, "
            "or set MEDIABEAT_DATABASE_URL to the database you meant (see `mediabeat config`)"
        )
    return describe_db_error(settings_url, exc) if settings_url else text.splitlines()[0]


def working(message: str) -> contextlib.AbstractContextManager[Any]:
    """A spinner with `message` on stderr while long work runs, when a person is watching (a terminal)."""
    if not err_console.is_terminal:
        return contextlib.nullcontext()
    return err_console.status(message)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    """Print a table: at a terminal, fitted to its width; piped or captured, at its full width, nothing cut."""
    out = Table(*columns, title=title, show_lines=False, header_style="bold")
    for row in rows:
        out.add_row(*("" if v is None else str(v) for v in row))
    if console.is_terminal:
        console.print(out)
        return
    # No terminal (a pipe, a CI log): rich would assume 80 columns and cut URLs to "https…".
    natural = Measurement.get(console, console.options.update_width(UNBOUNDED_WIDTH), out).maximum
    Console(width=max(natural, console.width)).print(out)


def when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"
