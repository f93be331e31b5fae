"""A fresh, migrated database for one benchmark phase: a SQLite file, or a PostgreSQL database dropped afterwards."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def fresh_database(admin_url: str | None, sqlite_path: Path) -> Iterator[str]:
    """Yield the URL of a new database at the latest migration: SQLite at `sqlite_path` without
    `admin_url`, else a PostgreSQL database created through `admin_url` and dropped on the way out."""
    import sqlalchemy as sa

    from mediabeat.db import migrate

    if admin_url is None:
        url = f"sqlite:///{sqlite_path}"
        migrate.upgrade(url)
        yield url
        return
    name = f"mbbench_{os.getpid()}_{time.monotonic_ns()}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
