"""`mediabeat db`: schema migrations and database roles."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from sqlalchemy.engine import make_url

from mediabeat.cli.common import CliError, with_services
from mediabeat.db import migrate, rls
from mediabeat.db.backup import BackupRefused, PgDump, backup_sqlite, plan_backup, run_pg_dump
from mediabeat.db.engine import database_location, redacted, sync_url
from mediabeat.settings import load_settings

app = typer.Typer(help="Database schema: upgrade, inspect and back up.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision")) -> None:
    """Run the migrations (safe to run from several processes at once)."""
    settings = load_settings()
    try:
        migrate.upgrade(settings.database_url, revision)
    except migrate.MigrationRefused as exc:
        raise CliError(str(exc), exit_code=2) from None
    where = database_location(settings.database_url)
    typer.echo(f"database {where} is at revision {migrate.current_revision(settings.database_url)}")


@app.command("current")
def current() -> None:
    """Print the schema revision of the database and the newest one this version knows."""
    settings = load_settings()
    typer.echo(f"database: {database_location(settings.database_url)}")
    typer.echo(f"current: {migrate.current_revision(settings.database_url) or 'none (run mediabeat db upgrade)'}")
    typer.echo(f"head:    {migrate.head_revision()}")


@app.command("backup")
def backup(
    file: Annotated[Path, typer.Argument(help="The backup file to write", dir_okay=False)],
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists")] = False,
    run: Annotated[bool, typer.Option("--run", help="PostgreSQL: run the pg_dump command, not just print it")] = False,
) -> None:
    """Back up the database: SQLite online, while the service runs; PostgreSQL as the pg_dump command to run."""
    settings = load_settings()
    try:
        plan = plan_backup(settings.database_url, file, force=force)
    except BackupRefused as exc:
        raise CliError(str(exc), exit_code=2) from None
    if not isinstance(plan, PgDump):
        try:
            size = backup_sqlite(plan)
        except BackupRefused as exc:
            raise CliError(str(exc)) from None
        typer.echo(f"backed up {plan.source} to {plan.target} ({size} bytes)")
        typer.echo(f"to restore: stop MediaBeat, delete {plan.source}-wal and -shm if left, copy the backup over it")
        return
    typer.echo(str(plan))
    if plan.password is not None:
        typer.echo("# the password is left out: pg_dump asks for it, or reads PGPASSWORD or ~/.pgpass")
    if not run:
        typer.echo("# run the command above, or add --run to have mediabeat run it with the configured password")
        return
    executable = shutil.which("pg_dump")
    if executable is None:
        raise CliError("pg_dump is not on PATH: install PostgreSQL's client tools (apt-get install postgresql-client)")
    status = run_pg_dump(plan, executable)
    if status != 0:
        raise CliError(f"pg_dump failed with exit status {status}")
    restore = shlex.join(["pg_restore", f"--dbname={plan.conninfo}", str(file)])
    typer.echo(f"backed up to {file}; restore with: {restore}")


@app.command("search-upkeep")
def search_upkeep() -> None:
    """Keep search's side indexes up now, as the nightly cleanup does: on SQLite, count the words ranking
    leaves out and list the common ones; on PostgreSQL, move the newest articles' GIN index up when it is
    due (run as the owner of the articles table: a login with the app role may not build an index)."""
    done, message = with_services(lambda services: services.content.search.upkeep())
    if not done:
        raise CliError(message)
    typer.echo(message)


@app.command("grant-app-role")
def grant_app_role(
    role: Annotated[str, typer.Argument(help="The login role the service (or an org-scoped client) connects as")],
    member: Annotated[
        bool, typer.Option("--member", help="Org-scoped: sees only the rows of the organisation given with --org")
    ] = False,
    org: Annotated[
        str | None, typer.Option("--org", help="With --member: the organisation (id or name) the role is scoped to")
    ] = None,
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
        statements = rls.grant_statements(
            role, member=member, database=url.database or "postgres", create=create, org=org
        )
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
                scoped = conn.exec_driver_sql(statement)
            if member and scoped.rowcount != 1:
                raise CliError(f"no organisation {org!r}: give an id or a name from `mediabeat orgs list`", exit_code=2)
    finally:
        engine.dispose()
    scope = f"member role scoped to organisation {org!r}" if member else "application role"
    typer.echo(f"{role} is now a MediaBeat {scope} on {redacted(settings.database_url)}")
