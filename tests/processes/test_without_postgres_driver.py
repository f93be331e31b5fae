"""An install without extras: SQLite works in full, and PostgreSQL says what to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Runs Python as an install without the extras would: importing psycopg (the `postgres` extra) or psutil
# (the `dev` extra, for tests and benchmarks) fails, and nothing may need them.
WITHOUT_EXTRAS = "import sys; sys.modules.update(psycopg=None, psycopg_binary=None, psutil=None)\n"
CLI = WITHOUT_EXTRAS + "import sys; from mediabeat.cli import main; sys.argv = ['mediabeat', *sys.argv[1:]]; main()"
SERVE = WITHOUT_EXTRAS + (
    "from fastapi.testclient import TestClient\n"
    "from mediabeat.app import create_app\n"
    "from mediabeat.settings import load_settings\n"
    "with TestClient(create_app(load_settings())) as client:\n"
    "    print(client.get('/healthz').status_code, client.get('/openapi.json').status_code)\n"
)


def python(code: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIABEAT_")}
    return {**env, "MEDIABEAT_DATABASE_URL": database_url, "MEDIABEAT_LOG_LEVEL": "WARNING"}


def test_sqlite_needs_no_postgres_driver(tmp_path: Path) -> None:
    env = _env(f"sqlite:///{tmp_path}/mb.db")
    for args in (["db", "upgrade"], ["tasks", "run", "nightly-cleanup"], ["runs", "list"]):
        done = python(CLI, *args, env=env)
        assert done.returncode == 0, f"{args}: {done.stderr}"
    served = python(SERVE, env=env)
    assert served.returncode == 0, served.stderr
    assert served.stdout.split() == ["200", "200"]


def test_postgres_without_its_driver_says_what_to_install(tmp_path: Path) -> None:
    done = python(CLI, "db", "upgrade", env=_env("postgresql://mediabeat@127.0.0.1:1/mediabeat"))
    assert done.returncode == 1
    assert done.stderr == (
        "error: PostgreSQL needs its driver, psycopg, which this installation lacks: "
        "pip install 'mediabeat[postgres]'\n"
    )
