"""Backups: SQLite through its online backup API, PostgreSQL through the pg_dump command it plans."""

from __future__ import annotations

import contextlib
import os
import shlex
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

# Pages copied per step: other connections may write between steps, and the copy stays consistent
# (SQLite restarts it when the source changes under it).
SQLITE_BACKUP_PAGES = 4096


class BackupRefused(Exception):
    """The backup cannot be made as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class SqliteBackup:
    source: Path
    target: Path


@dataclass(frozen=True, slots=True)
class PgDump:
    """The pg_dump command line, without the password, which goes to pg_dump through PGPASSWORD."""

    argv: list[str]
    conninfo: str
    password: str | None

    def __str__(self) -> str:
        return shlex.join(self.argv)


def plan_backup(url: str, target: Path, *, force: bool) -> SqliteBackup | PgDump:
    """Work out how to back up the database at `url` to `target`, refusing to overwrite a file without `force`."""
    if target.exists() and not force:
        raise BackupRefused(f"{target} exists: choose another file, or add --force to overwrite it")
    if target.exists() and not target.is_file():
        raise BackupRefused(f"{target} is not a file")
    if not target.absolute().parent.is_dir():
        raise BackupRefused(f"the folder {target.absolute().parent} does not exist")
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise BackupRefused("an in-memory SQLite database has nothing to back up")
        source = Path(parsed.database or "").expanduser().absolute()
        if not source.is_file():
            raise BackupRefused(f"there is no database at {source}: nothing to back up (see `mediabeat config`)")
        return SqliteBackup(source=source, target=target.absolute())
    without_password = URL.create(
        "postgresql", parsed.username, None, parsed.host, parsed.port, parsed.database, parsed.query
    )
    conninfo = without_password.render_as_string(hide_password=False)
    argv = ["pg_dump", "--format=custom", f"--file={target}", f"--dbname={conninfo}"]
    return PgDump(argv=argv, conninfo=conninfo, password=parsed.password)


def backup_sqlite(plan: SqliteBackup) -> int:
    """Copy the live database to plan.target (via a temporary file, so a failed copy leaves nothing); its size."""
    partial = plan.target.with_name(f".{plan.target.name}.partial")
    try:
        source = sqlite3.connect(f"file:{plan.source}?mode=ro", uri=True)
        try:
            copy = sqlite3.connect(partial)
            try:
                source.backup(copy, pages=SQLITE_BACKUP_PAGES)
                # One self-contained file: the copy leaves WAL mode (MediaBeat sets it again when it opens one).
                copy.execute("PRAGMA journal_mode = DELETE")
            finally:
                copy.close()
        finally:
            source.close()
        os.replace(partial, plan.target)
    except (sqlite3.Error, OSError) as exc:
        raise BackupRefused(f"could not back up {plan.source} to {plan.target}: {exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return plan.target.stat().st_size


def run_pg_dump(plan: PgDump, executable: str) -> int:
    """Run pg_dump (found at `executable`) with the password in its environment; its exit status."""
    # The child gets this process's environment (libpq reads PG* variables), plus the password.
    env = {**os.environ, **({"PGPASSWORD": plan.password} if plan.password else {})}
    return subprocess.run([executable, *plan.argv[1:]], env=env, check=False).returncode
