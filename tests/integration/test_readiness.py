"""/readyz is ready only when the database would take a write; a 503 never names the database's location."""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mediabeat.app import build_services, create_app
from mediabeat.settings import load_settings
from tests.conftest import POSTGRES_URL


@contextlib.contextmanager
def read_only(database_url: str) -> Iterator[None]:
    """Make the database refuse writes the way production can: an immutable file, or a read-only PostgreSQL."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        # Root writes through chmod, but not through the immutable attribute: the open for writing
        # fails with EPERM and SQLite opens the file read-only, as for a file the service may not write.
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode != 0:
            pytest.skip("the immutable attribute (chattr +i) is not available here")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        return
    assert POSTGRES_URL  # the server's maintenance database: the test's own one is about to refuse the RESET
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{url.database}" SET default_transaction_read_only = on')
    try:
        yield
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{url.database}" RESET default_transaction_read_only')
        admin.dispose()


async def test_readyz_is_503_while_the_database_refuses_writes(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(database_url=database_url, enable_scheduler=False)
    services = build_services(settings)
    app = create_app(settings, services=services)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.get("/readyz")).status_code == 200
            await services.db.engine.dispose()
            with read_only(database_url), caplog.at_level(logging.ERROR, logger="mediabeat.web"):
                await services.db.engine.dispose()
                response = await client.get("/readyz")
                assert response.status_code == 503, response.text
                error = response.json()["error"]
                assert error["code"] == "database_unavailable" and error["details"] == {"reason": "read_only"}
                assert "refuses writes" in error["message"]
                where = make_url(database_url).database or ""
                assert where not in response.text and "127.0.0.1" not in response.text
                assert any(where in r.getMessage() for r in caplog.records), "the details go to the log"
            await services.db.engine.dispose()
            assert (await client.get("/readyz")).status_code == 200
    finally:
        await services.close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_readyz_does_not_wait_for_a_long_write(database_url: str) -> None:
    """A writer holding SQLite's write lock is proof that writes work: the probe answers at once."""
    settings = load_settings(database_url=database_url, enable_scheduler=False)
    services = build_services(settings)
    app = create_app(settings, services=services)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    writer = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            started = time.monotonic()
            response = await client.get("/readyz")
            assert response.status_code == 200, response.text
            assert time.monotonic() - started < 5
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        await services.close()
