"""Shared fixtures: a fresh, migrated database per test on SQLite, and on PostgreSQL when available."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mediabeat.db import migrate
from mediabeat.db.engine import Database
from tests.loopback import LoopbackServer

POSTGRES_URL = os.environ.get("MEDIABEAT_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_start_order)
    if getattr(config.option, "loadgroup", False):  # a pytest-xdist worker under --dist loadgroup
        for item in items:
            _join_xdist_group(item)
    if POSTGRES_URL:
        return
    skip = pytest.mark.skip(reason="PostgreSQL skipped: MEDIABEAT_TEST_POSTGRES_URL is not set")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def _start_order(item: pytest.Item) -> int:
    """Long tests first, short ones last: with `-n auto` no worker is left with a long test while the others idle.

    pytest-xdist hands out tests (and `xdist_group`s, largest first) in collection order; a stable
    sort keeps the order within each kind.
    """
    if item.get_closest_marker("slow") is not None:
        return 0
    path = item.path.as_posix()
    if "/tests/processes/" in path:
        return 1
    if "/tests/unit/" in path:
        return 3
    return 2


def _join_xdist_group(item: pytest.Item) -> None:
    """Give a test marked `xdist_group` the `@group` suffix that sends its whole group to one worker.

    pytest-xdist adds that suffix by setting `item._nodeid`, which pytest 9 no longer reads (the
    node id is a structured `item._id`): without this, every `xdist_group` mark is silently ignored
    and the tests it keeps apart (several sets of worker processes at once, say) run side by side.
    """
    names = sorted(
        {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
    )
    nodeid = item.nodeid
    if not names or nodeid.rfind("@") > nodeid.rfind("]"):
        return  # not grouped, or pytest-xdist's own suffix took
    grouped = f"{nodeid}@{'_'.join(names)}"
    node_id = getattr(item, "_id", None)
    if node_id is not None and hasattr(type(node_id), "parse"):
        item._id = type(node_id).parse(grouped)
    else:
        item._nodeid = grouped


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not POSTGRES_URL:
        terminalreporter.write_line(
            "NOTE: PostgreSQL tests were skipped (set MEDIABEAT_TEST_POSTGRES_URL to run them); SQLite tests ran.",
            yellow=True,
        )


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    assert POSTGRES_URL
    name = f"mbtest_tpl_{_worker()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield name
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


class PostgresDatabases:
    """This worker's test databases on PostgreSQL: each copied from the migrated template one test ahead,
    and dropped after its test, on a thread of its own.

    Copying the template and dropping a database (which waits for a checkpoint) take from a few
    hundred milliseconds to seconds on a busy server; done here, they overlap the tests instead of
    adding to each. A test still gets a database nobody has used, created from the template.
    """

    def __init__(self, template: str) -> None:
        assert POSTGRES_URL
        self.template = template
        self.admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-databases")
        self.ahead: Future[str] | None = None
        self.drops: list[Future[None]] = []

    def take(self) -> str:
        """The name of a fresh database; the next one starts being made."""
        made = self.ahead or self.thread.submit(self._create)
        self.ahead = None
        name = made.result()
        self.ahead = self.thread.submit(self._create)
        return name

    def give_back(self, name: str) -> None:
        self.drops = [drop for drop in self.drops if not drop.done() or drop.exception() is not None]
        self.drops.append(self.thread.submit(self._drop, name))

    def close(self) -> None:
        if self.ahead is not None:
            self.give_back(self.ahead.result())
            self.ahead = None
        self.thread.shutdown(wait=True)
        for drop in self.drops:
            drop.result()  # a drop that failed fails the session here
        self.admin.dispose()

    def _create(self) -> str:
        name = f"mbtest_{_worker()}_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def _drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_databases(postgres_template: str) -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(postgres_template)
    yield databases
    databases.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh, migrated database of the current backend, removed after the test."""
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "mediabeat.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    assert POSTGRES_URL
    name = databases.take()
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    databases.give_back(name)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def site() -> Iterator[LoopbackServer]:
    """A loopback HTTP server whose routes the test sets (see tests/loopback.py)."""
    with LoopbackServer() as server:
        yield server
