"""What an operator meets on the command line: where the data is, .env and secrets, version, completion,
JSON logs and backups."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mediabeat import __version__
from tests.conftest import POSTGRES_URL
from tests.processes.harness import mediabeat


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


def test_version_and_its_short_form(operator_env: dict[str, str], tmp_path: Path) -> None:
    for flag in ("--version", "-V"):
        out = mediabeat(flag, env=operator_env, cwd=tmp_path)
        assert (out.returncode, out.stdout) == (0, f"mediabeat {__version__}\n")


def test_shell_completion_is_offered_and_completes_commands(operator_env: dict[str, str], tmp_path: Path) -> None:
    """The installed script, as a shell calls it: bash sets _MEDIABEAT_COMPLETE and the words typed so far."""
    script = Path(sys.executable).with_name("mediabeat")
    helped = subprocess.run([script, "--help"], env=operator_env, capture_output=True, text=True, timeout=60)
    assert "--install-completion" in helped.stdout and "--show-completion" in helped.stdout
    completion = {**operator_env, "_MEDIABEAT_COMPLETE": "complete_bash", "COMP_WORDS": "mediabeat tasks r"}
    done = subprocess.run(
        [script], env={**completion, "COMP_CWORD": "2"}, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["run"]


def test_json_logs_are_one_object_a_line_with_the_run_on_a_runs_records(
    operator_env: dict[str, str], tmp_path: Path
) -> None:
    """A worker whose simulated clock reaches midnight at once, so nightly-cleanup runs and logs."""
    env = {
        **operator_env,
        "MEDIABEAT_DATABASE_URL": f"sqlite:///{tmp_path}/mb.db",
        "MEDIABEAT_LOG_FORMAT": "json",
        "MEDIABEAT_CLOCK_EPOCH": "2026-01-01T23:59:59+00:00",
    }
    records = []
    with subprocess.Popen(
        [sys.executable, "-m", "mediabeat", "worker"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    ) as worker:
        assert worker.stderr is not None
        try:
            for line in worker.stderr:  # pytest-timeout ends the test if the run never comes
                record = json.loads(line)
                records.append(record)
                if record.get("task") == "nightly-cleanup":
                    break
        finally:
            worker.terminate()
            worker.stderr.read()
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    started = next(record for record in records if record["message"].startswith("worker "))
    assert "run_id" not in started and "task" not in started
    cleanup = records[-1]
    assert cleanup["message"].startswith("nightly-cleanup deleted") and isinstance(cleanup["run_id"], int)
    listed = mediabeat("runs", "list", "--json", env=env, cwd=tmp_path)
    assert cleanup["run_id"] in {run["id"] for run in json.loads(listed.stdout) if run["task"] == "nightly-cleanup"}


def test_sqlite_backup_is_a_consistent_copy_and_is_not_overwritten_by_accident(
    operator_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**operator_env, "MEDIABEAT_DATABASE_URL": f"sqlite:///{tmp_path}/mb.db"}
    assert mediabeat("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    made = mediabeat("db", "backup", "copy.db", env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"backed up {tmp_path}/mb.db to {tmp_path}/copy.db (")
    with contextlib.closing(sqlite3.connect(tmp_path / "copy.db")) as copy:
        names = {row[0] for row in copy.execute("SELECT name FROM scheduler_tasks")}
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert "nightly-cleanup" in names

    again = mediabeat("db", "backup", "copy.db", env=env, cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr == "error: copy.db exists: choose another file, or add --force to overwrite it\n"
    assert mediabeat("db", "backup", "copy.db", "--force", env=env, cwd=tmp_path).returncode == 0

    restored = {**env, "MEDIABEAT_DATABASE_URL": f"sqlite:///{tmp_path}/copy.db"}
    assert "nightly-cleanup" in mediabeat("tasks", "list", env=restored, cwd=tmp_path).stdout


def test_backup_of_a_missing_sqlite_database_says_where_it_looked(operator_env: dict[str, str], tmp_path: Path) -> None:
    out = mediabeat("db", "backup", "copy.db", env=operator_env, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: there is no database at {tmp_path}/xdg/mediabeat/mediabeat.db")
    assert not (tmp_path / "copy.db").exists()


def test_postgres_backup_prints_pg_dump_without_the_password(operator_env: dict[str, str], tmp_path: Path) -> None:
    env = {**operator_env, "MEDIABEAT_DATABASE_URL": "postgresql://mb:s3cret@127.0.0.1:5432/news?sslmode=disable"}
    out = mediabeat("db", "backup", "news.dump", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == (
        "pg_dump --format=custom --file=news.dump '--dbname=postgresql://mb@127.0.0.1:5432/news?sslmode=disable'"
    )
    assert "s3cret" not in out.stdout and not (tmp_path / "news.dump").exists()


@pytest.mark.postgres
@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump is not installed")
def test_postgres_backup_runs_pg_dump_with_the_password(operator_env: dict[str, str], tmp_path: Path) -> None:
    env = {**operator_env, "MEDIABEAT_DATABASE_URL": str(POSTGRES_URL)}
    out = mediabeat("db", "backup", "pg.dump", "--run", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "pg.dump").read_bytes().startswith(b"PGDMP")
    assert "restore with: pg_restore" in out.stdout
