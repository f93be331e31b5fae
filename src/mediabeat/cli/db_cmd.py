"""`mediabeat db`: schema migrations and database roles."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
import typer
from sqlalchemy.engine import make_url

from mediabeat.cli.common import CliError
from mediabeat.db import migrate, rls
from mediabeat.db.engine import database_location, redacted, sync_url
from mediabeat.settings import load_settings

app = typer.Typer(help="Database schema: upgrade and inspect.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision")) -> None:
    """Run the migrations (safe to run from several processes at once)."""
    settings = load_settings()
    migrate.upgrade(settings.database_url, revision)
    where = database_location(settings.database_url)
    typer.echo(f"database {where} is at revision {migrate.current_revision(settings.database_url)}")


@app.command("current")
def current() -> None:
    """Print the schema revision of the database and the newest one this version knows."""
    settings = load_settings()
    typer.echo(f"database: {database_location(settings.database_url)}")
    typer.echo(f"current: {migrate.current_revision(settings.database_url) or 'none (run mediabeat db upgrade)'}")
    typer.echo(f"head:    {migrate.head_revision()}")


@app.command("grant-app-role")
def grant_app_role(
    role: Annotated[str, typer.Argument(help="The login role the service (or an org-scoped client) connects as")],
    member: Annotated[
        bool, typer.Option("--member", help="Org-scoped: sees only the rows of the org in SET app.org_id")
    ] = False,
    create: Annotated[
        bool, typer.Option("--create", help="Also create the login role (set its password yourself)")
    ] = False,
    apply: Annotated[
        bool, typer.Option("--apply", help="Run the statements (as the owner) instead of printing them")
    ] = False,
) -> None:
    """Print (or apply) least-privilege grants for a PostgreSQL login role (mediabeat_app or mediabeat_member)."""
    settings = load_settings()
    url = make_url(settings.database_url)
    if url.get_backend_name() != "postgresql":
        raise CliError("grant-app-role is for PostgreSQL; SQLite has no roles", exit_code=2)
    try:
        statements = rls.grant_statements(role, member=member, database=url.database or "postgres", create=create)
    except ValueError as exc:
        raise CliError(str(exc), exit_code=2) from None
    if not apply:
        typer.echo("-- run as the database owner (after `mediabeat db upgrade`), e.g. with psql:")
        for statement in statements:
            typer.echo(f"{statement};")
        return
    engine = sa.create_engine(sync_url(settings.database_url), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            missing = conn.execute(
                sa.text("SELECT count(*) FROM pg_roles WHERE rolname IN (:a, :m)"),
                {"a": rls.APP_ROLE, "m": rls.MEMBER_ROLE},
            ).scalar_one()
            if missing != 2:
                raise CliError("the group roles are missing: run `mediabeat db upgrade` as the owner first")
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()
    scope = "org-scoped member" if member else "application"
    typer.echo(f"{role} is now a MediaBeat {scope} role on {redacted(settings.database_url)}")
