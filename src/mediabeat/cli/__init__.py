"""The `mediabeat` command line."""

from __future__ import annotations

import sys
import traceback
from typing import Annotated

import sqlalchemy as sa
import typer

from mediabeat import __version__
from mediabeat.cli import (
    config_cmd,
    crawl_cmd,
    cron_cmd,
    db_cmd,
    demo_cmd,
    monitors_cmd,
    nodes_cmd,
    reextract_cmd,
    runs_cmd,
    scheduler_cmd,
    search_cmd,
    serve_cmd,
    sitemaps_cmd,
    stories_cmd,
    tasks_cmd,
    users_cmd,
    websub_cmd,
)
from mediabeat.cli.common import CliError, CommandGroup, schema_hint
from mediabeat.db.engine import DatabaseUnavailable
from mediabeat.settings import SettingsError, debug_tracebacks

app = typer.Typer(
    name="mediabeat",
    help="MediaBeat: scheduled crawling and background tasks for media monitoring.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=CommandGroup,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mediabeat {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool | None,
        typer.Option("--version", "-V", callback=_print_version, is_eager=True, help="Print the version and exit"),
    ] = None,
) -> None:
    """MediaBeat: scheduled crawling and background tasks for media monitoring."""


app.add_typer(cron_cmd.app, name="cron")
app.add_typer(db_cmd.app, name="db")
app.add_typer(tasks_cmd.app, name="tasks")
app.add_typer(runs_cmd.app, name="runs")
app.add_typer(users_cmd.users_app, name="users")
app.add_typer(users_cmd.tokens_app, name="tokens")
app.add_typer(nodes_cmd.app, name="nodes")
app.add_typer(scheduler_cmd.app, name="scheduler")
app.command("stats")(runs_cmd.stats)
app.command("serve")(serve_cmd.serve)
app.command("worker")(serve_cmd.worker)
app.command("config")(config_cmd.config)
app.add_typer(crawl_cmd.orgs_app, name="orgs")
app.add_typer(crawl_cmd.feeds_app, name="feeds")
crawl_cmd.feeds_app.command("websub")(websub_cmd.feeds_websub)
crawl_cmd.feeds_app.command("sitemaps")(sitemaps_cmd.feeds_sitemaps)
app.add_typer(crawl_cmd.articles_app, name="articles")
crawl_cmd.articles_app.command("search")(search_cmd.articles_search)
crawl_cmd.articles_app.command("reextract")(reextract_cmd.articles_reextract)
app.add_typer(crawl_cmd.jobs_app, name="jobs")
app.add_typer(stories_cmd.app, name="stories")
app.command("demo-site")(demo_cmd.demo_site)
app.add_typer(demo_cmd.app, name="demo")
app.add_typer(monitors_cmd.app, name="monitors")


def main() -> None:
    """Entry point: user errors become one line on stderr and an exit status, never a traceback."""
    try:
        app()
    except CliError as exc:
        _fail(str(exc), exc.exit_code)
    except SettingsError as exc:
        _fail(f"bad setting: {exc}", 2)
    except DatabaseUnavailable as exc:
        _fail(str(exc), 1)
    except sa.exc.DBAPIError as exc:
        _fail(schema_hint(exc), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:  # the last line of defence: a bug, told in one line, traceback only on request
        if debug_tracebacks():
            traceback.print_exc()
        _fail(f"unexpected {type(exc).__name__}: {exc} (set MEDIABEAT_DEBUG=1 for the traceback)", 1)


def _fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)
