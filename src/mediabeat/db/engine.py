"""Connections to the embedded SQLite database or to PostgreSQL, behind one small interface."""

from __future__ import annotations

import contextlib
import importlib.util
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_READY_BUSY_TIMEOUT_MS = 200
SQLITE_CACHE_KIB = 16_384


class DatabaseUnavailable(Exception):
    """The database cannot be reached; the message says where and what to check."""


class DatabaseReadOnly(DatabaseUnavailable):
    """The database answers but would refuse every write."""


PG_WRITABLE = "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"
# A write statement that changes nothing: SQLite still opens a write transaction on the file for it.
SQLITE_NO_OP_WRITE = "UPDATE scheduler_leases SET holder = holder WHERE 0 = 1"


def async_url(url: str) -> URL:
    """The async-driver form of a user-facing URL (sqlite:/// -> sqlite+aiosqlite:///)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in {"postgresql", "postgres"}:
        return parsed.set(drivername=postgres_driver())
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def sync_url(url: str) -> URL:
    """The blocking-driver form, for Alembic."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite")
    return parsed.set(drivername=postgres_driver())


def postgres_driver() -> str:
    """SQLAlchemy's name for psycopg, which comes with the `postgres` extra: a SQLite install has none."""
    if importlib.util.find_spec("psycopg") is None:
        raise DatabaseUnavailable(
            "PostgreSQL needs its driver, psycopg, which this installation lacks: pip install 'mediabeat[postgres]'"
        )
    return "postgresql+psycopg"


def ensure_sqlite_directory(url: str) -> None:
    """Create the folder that holds a SQLite file, so a first start just works."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database or "").expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = f"cannot create its folder {folder}: {exc.strerror or exc}"
            raise DatabaseUnavailable(f"cannot use the database at {redacted(url)}: {reason}") from None


def configure_sqlite(engine: sa.Engine) -> None:
    """WAL, a busy timeout, foreign keys and a larger page cache on every connection, and explicit BEGINs.

    pysqlite's own transaction handling defers BEGIN until the first write, which lets a
    read-then-write transaction fail with "database is locked" instead of waiting. We
    take over: a transaction begins with BEGIN, or BEGIN IMMEDIATE when the connection
    asks for it through the `sqlite_begin` execution option (see Database.write()).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # 16 MB of page cache instead of SQLite's 2 MB: a crawl's bulk insert touches the unique
        # (org_id, url_hash) index at random, and with the small cache each batch rereads its pages.
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def configure_postgres(engine: sa.Engine) -> None:
    """Every connection's session time zone is UTC, whatever the server's default.

    psycopg then returns timestamptz values already in UTC (`datetime.UTC`), which UTCDateTime
    passes through instead of converting each one; and timestamps render the same everywhere.
    A SET rather than a startup option, because PgBouncer refuses unknown startup parameters.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        cursor.execute("SET TIME ZONE 'UTC'")
        cursor.close()
        dbapi_connection.autocommit = autocommit


class Database:
    """The service's database: an async engine plus read and write transactions.

    Use `async with db.read() as conn` for reads and `async with db.write() as conn` for
    anything that writes. On SQLite a write transaction takes the write lock up front, so
    concurrent writers queue on the busy timeout instead of failing. On PostgreSQL a read
    runs in autocommit: each statement is its own snapshot, as it already was under READ
    COMMITTED, without the BEGIN and COMMIT round trips, and a slow reader holds no
    transaction open.
    """

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        ensure_sqlite_directory(url)
        target = async_url(url)
        self.backend = target.get_backend_name()
        options: dict[str, Any] = {"echo": echo, "pool_pre_ping": True}
        if self.backend == "postgresql":
            options.update(pool_size=pool_size, max_overflow=pool_size)
        self.engine: AsyncEngine = create_async_engine(target, **options)
        if self.backend == "sqlite":
            configure_sqlite(self.engine.sync_engine)
        else:
            configure_postgres(self.engine.sync_engine)

    @property
    def is_postgres(self) -> bool:
        return self.backend == "postgresql"

    @property
    def is_sqlite(self) -> bool:
        return self.backend == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        """The database file, for SQLite on disk; None otherwise."""
        database = make_url(self.url).database
        if not self.is_sqlite or database in (None, "", ":memory:"):
            return None
        return Path(database or "").expanduser()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            if self.is_postgres:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            async with conn.begin():
                yield conn

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
            async with conn.begin():
                yield conn

    async def ping(self) -> None:
        """Raise DatabaseUnavailable unless a trivial query answers."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise DatabaseUnavailable(describe_db_error(self.url, exc)) from None

    async def check_writable(self) -> None:
        """Raise DatabaseUnavailable unless the database answers and would accept a write; nothing is written.

        SQLite: a write transaction with a write statement that changes no row, rolled back (a
        file opened read-only refuses the statement). PostgreSQL: a standby in recovery, or a
        session whose transactions are read-only (default_transaction_read_only), refuses writes.
        """
        try:
            if self.is_postgres:
                async with self.read() as conn:
                    recovery, read_only = (await conn.execute(sa.text(PG_WRITABLE))).one()
                if recovery or read_only == "on":
                    reason = "in recovery (a standby)" if recovery else "read-only (transaction_read_only is on)"
                    raise DatabaseReadOnly(f"the database at {redacted(self.url)} accepts no writes: it is {reason}")
                return
            async with self.engine.connect() as conn:
                # On the driver's connection (autocommit: see configure_sqlite), so that no BEGIN of
                # SQLAlchemy's own waits out the busy timeout behind a writer.
                await _probe_sqlite_write((await conn.get_raw_connection()).driver_connection)
        except (sa.exc.SQLAlchemyError, sqlite3.Error, OSError) as exc:
            kind = DatabaseReadOnly if _is_sqlite_read_only(exc) else DatabaseUnavailable
            raise kind(describe_db_error(self.url, exc)) from None

    async def dispose(self) -> None:
        await self.engine.dispose()


def redacted(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def database_location(url: str) -> str:
    """Where the data lives, for people: a SQLite file's absolute path, else the URL without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return str(Path(parsed.database or "").expanduser().absolute())
    return redacted(url)


def describe_db_error(url: str, exc: BaseException) -> str:
    """One line for a person: which database failed and the driver's first line of reason."""
    original = getattr(exc, "orig", None) or exc
    reason = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    return f"cannot use the database at {redacted(url)}: {reason}"


def _is_sqlite_read_only(exc: BaseException) -> bool:
    """SQLITE_READONLY and its extended codes: a file opened read-only, or a read-only directory or medium."""
    original = getattr(exc, "orig", None) or exc
    return str(getattr(original, "sqlite_errorname", "")).startswith("SQLITE_READONLY")


def _is_sqlite_busy(exc: BaseException) -> bool:
    original = getattr(exc, "orig", None) or exc
    return str(getattr(original, "sqlite_errorname", "")).startswith("SQLITE_BUSY")


async def _probe_sqlite_write(driver: Any) -> None:
    """A write transaction with a write that changes nothing, rolled back, on an aiosqlite connection.

    A writer holding the lock is proof that writes work: the probe waits for it only briefly, and
    a busy database counts as writable. A probe must not wait out a long write (an import).
    """
    await driver.execute(f"PRAGMA busy_timeout = {SQLITE_READY_BUSY_TIMEOUT_MS}")
    try:
        await driver.execute("BEGIN IMMEDIATE")
        try:
            await driver.execute(SQLITE_NO_OP_WRITE)
        finally:
            await driver.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if not _is_sqlite_busy(exc):
            raise
    finally:
        await driver.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
