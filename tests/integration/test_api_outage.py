"""The database goes away under a running server: the API answers 503 with a sentence, the dashboard a page."""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.integration.api_fixtures import ADMIN_EMAIL, ADMIN_PASSWORD, make_env
from tests.processes.proxy import CuttableProxy


@contextlib.contextmanager
def cuttable(database_url: str, tmp_path: Path) -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """A URL to the test database, and how to take it away and bring it back."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        here, away = tmp_path / "db", tmp_path / "db-away"
        here.mkdir()
        shutil.copyfile(url.database or "", here / "mediabeat.db")
        yield f"sqlite:///{here}/mediabeat.db", lambda: here.rename(away), lambda: away.rename(here)
        return
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    try:
        yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy.cut, proxy.restore
    finally:
        proxy.close()


async def test_a_database_outage_is_a_503_with_a_sentence_and_the_server_recovers(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with cuttable(database_url, tmp_path) as (url, cut, restore):
        env = await make_env(url)
        try:
            async with env.admin() as api, env.client() as browser:
                signed_in = await browser.post(
                    "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
                )
                assert signed_in.status_code == 200
                assert (await api.get("/api/v1/scheduler/tasks")).status_code == 200

                cut()
                await env.services.db.engine.dispose()  # connections the pool holds would fail only on use
                with caplog.at_level(logging.ERROR, logger="mediabeat.web"):
                    down = await api.get("/api/v1/scheduler/tasks")
                    page = await browser.get("/app/admin/scheduler")
                assert down.status_code == 503 and down.headers["retry-after"] == "5"
                error = down.json()["error"]
                assert error["code"] == "database_unavailable"
                assert error["message"].startswith("the database is unavailable")
                assert "Traceback" not in down.text
                # Where the database is, and the driver's reason, are for the log: not for any client.
                where = make_url(url).database or ""
                assert where not in down.text and "127.0.0.1" not in down.text
                assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
                assert "The database is unavailable" in page.text and "cannot use the database at" not in page.text
                assert where not in page.text
                logged = [r for r in caplog.records if "cannot use the database" in r.getMessage()]
                assert logged and all(r.exc_info is None for r in logged), "an outage is one line, not a traceback"

                restore()
                assert (await api.get("/api/v1/scheduler/tasks")).status_code == 200
                assert (await browser.get("/app/admin/scheduler")).status_code == 200
        finally:
            await env.services.close()
