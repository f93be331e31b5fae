"""`mediabeat db`: schema migrations."""

from __future__ import annotations

import typer

from mediabeat.db import migrate
from mediabeat.db.engine import redacted
from mediabeat.settings import load_settings

app = typer.Typer(help="Database schema: upgrade and inspect.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision")) -> None:
    """Run the migrations (safe to run from several processes at once)."""
    settings = load_settings()
    migrate.upgrade(settings.database_url, revision)
    typer.echo(
        f"database {redacted(settings.database_url)} is at revision {migrate.current_revision(settings.database_url)}"
    )


@app.command("current")
def current() -> None:
    """Print the schema revision of the database and the newest one this version knows."""
    settings = load_settings()
    typer.echo(f"current: {migrate.current_revision(settings.database_url) or 'none (run mediabeat db upgrade)'}")
    typer.echo(f"head:    {migrate.head_revision()}")
