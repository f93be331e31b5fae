"""Schema migrations: run Alembic safely from several processes at once."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mediabeat.db.engine import DatabaseUnavailable, describe_db_error, ensure_sqlite_directory, sync_url

if TYPE_CHECKING:  # Alembic (and Mako) load when a schema is read or changed, not when the CLI starts
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number: every MediaBeat process that migrates takes this advisory lock first.
PG_MIGRATION_LOCK = 7_311_942_015


class MigrationRefused(ValueError):
    """Alembic refused the request (a revision it does not know, say) before changing anything."""


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at `url` up to `revision`. One process migrates; the others wait, then find nothing to do."""
    from alembic import command
    from alembic.util.exc import CommandError

    ensure_sqlite_directory(url)
    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    try:
        with _migration_lock(url, engine) as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.commit()
    except CommandError as exc:
        reason = f"{exc}; this version's newest revision is {head_revision()}"
        raise MigrationRefused(f"cannot upgrade to {revision!r}: {reason}") from None
    except sa.exc.OperationalError as exc:
        raise DatabaseUnavailable(describe_db_error(url, exc)) from None
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except sa.exc.OperationalError as exc:
        raise DatabaseUnavailable(describe_db_error(url, exc)) from None
    finally:
        engine.dispose()


@contextlib.contextmanager
def _migration_lock(url: str, engine: sa.Engine) -> Iterator[sa.Connection]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": PG_MIGRATION_LOCK})
            connection.commit()
            try:
                yield connection
            finally:
                connection.rollback()
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": PG_MIGRATION_LOCK})
                connection.commit()
        return
    database = make_url(url).database or ""
    lock_path = Path(f"{database}.migrate.lock") if database not in ("", ":memory:") else None
    with contextlib.ExitStack() as stack:
        if lock_path is not None:
            handle = stack.enter_context(lock_path.open("a"))
            fcntl.flock(handle, fcntl.LOCK_EX)
        connection = stack.enter_context(engine.connect())
        connection.exec_driver_sql("PRAGMA journal_mode = WAL")
        yield connection
