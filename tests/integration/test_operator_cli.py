"""What an operator meets on the command line: where the data is, .env and *_FILE secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def mediabeat(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mediabeat", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def operator_env(tmp_path: Path) -> dict[str, str]:
    """No MediaBeat variables at all, as on an operator's shell, and a data directory of the test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIABEAT_") and k != "ENABLE_SCHEDULER"}
    return {**env, "XDG_DATA_HOME": str(tmp_path / "xdg"), "COLUMNS": "200"}


def _folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return folder


def test_the_cli_finds_one_database_from_any_working_directory(operator_env: dict[str, str], tmp_path: Path) -> None:
    project, elsewhere = _folder(tmp_path, "project"), _folder(tmp_path, "elsewhere")
    expected = tmp_path / "xdg" / "mediabeat" / "mediabeat.db"

    upgraded = mediabeat("db", "upgrade", env=operator_env, cwd=project)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.startswith(f"database {expected} is at revision ")

    listed = mediabeat("tasks", "list", "--json", env=operator_env, cwd=elsewhere)
    assert listed.returncode == 0, listed.stderr
    assert "nightly-cleanup" in {task["name"] for task in json.loads(listed.stdout)}
    for folder in (project, elsewhere):
        shown = mediabeat("config", env=operator_env, cwd=folder)
        assert shown.stdout.splitlines()[0] == f"database: {expected}"
    assert not (project / "data").exists() and not (elsewhere / "data").exists()


def test_an_unmigrated_database_error_says_where_it_looked(operator_env: dict[str, str], tmp_path: Path) -> None:
    out = mediabeat("runs", "list", env=operator_env, cwd=_folder(tmp_path, "anywhere"))
    assert out.returncode == 1
    where = tmp_path / "xdg" / "mediabeat" / "mediabeat.db"
    assert out.stderr.startswith(f"error: the database at {where} has no MediaBeat schema yet")
    assert "MEDIABEAT_DATABASE_URL" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_dot_env_in_the_working_directory_configures_the_cli(operator_env: dict[str, str], tmp_path: Path) -> None:
    folder = _folder(tmp_path, "service")
    (folder / ".env").write_text(
        f"MEDIABEAT_DATABASE_URL=sqlite:///{tmp_path}/from-dotenv.db\nMEDIABEAT_CRAWL_BATCH=7\n"
    )
    shown = mediabeat("config", env=operator_env, cwd=folder)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"database: {tmp_path}/from-dotenv.db"
    assert lines[1] == f"settings: environment variables, then {folder}/.env"
    assert any("MEDIABEAT_CRAWL_BATCH" in line and " 7 " in line for line in lines)


def test_secrets_come_from_files_and_a_missing_one_stops_the_cli(operator_env: dict[str, str], tmp_path: Path) -> None:
    folder = _folder(tmp_path, "service")
    (tmp_path / "db-url").write_text(f"sqlite:///{tmp_path}/secret.db\n")
    env = {**operator_env, "MEDIABEAT_DATABASE_URL_FILE": str(tmp_path / "db-url")}
    shown = mediabeat("config", env=env, cwd=folder)
    assert shown.stdout.splitlines()[0] == f"database: {tmp_path}/secret.db"

    env["MEDIABEAT_ADMIN_PASSWORD_FILE"] = str(tmp_path / "no-such-secret")
    failed = mediabeat("config", env=env, cwd=folder)
    assert failed.returncode == 2
    assert failed.stderr == (
        f"error: bad setting: MEDIABEAT_ADMIN_PASSWORD_FILE: cannot read {tmp_path}/no-such-secret: "
        "No such file or directory\n"
    )
