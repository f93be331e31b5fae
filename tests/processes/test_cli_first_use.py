"""What a new user runs into first: a database that cannot be made, and the messages that say why."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes.harness import mediabeat_in_process


@pytest.mark.parametrize("command", [["tasks", "list"], ["db", "upgrade"]])
def test_a_sqlite_folder_that_cannot_be_made_is_one_line(
    fresh_env: dict[str, str], tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    url = f"sqlite:///{tmp_path}/a-file/data/mb.db"
    out = mediabeat_in_process(*command, env={**fresh_env, "MEDIABEAT_DATABASE_URL": url})
    assert out.returncode == 1
    assert out.stderr.startswith(
        f"error: cannot use the database at {url}: cannot create its folder {tmp_path}/a-file/data"
    )
    assert "unexpected" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_migrating_at_start_logs_the_migrations_without_alembic_plugin_lines(tmp_path: Path) -> None:
    # What `serve` and `worker` do before they start: logging at INFO, then the migrations.
    code = (
        "import sys; from mediabeat.logs import configure_logging; from mediabeat.db.migrate import upgrade; "
        "configure_logging('INFO', 'text'); upgrade(sys.argv[1])"
    )
    url = f"sqlite:///{tmp_path}/mb.db"
    out = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Running upgrade" in out.stderr
    assert "setup plugin" not in out.stderr


def test_a_new_monitor_says_where_its_atom_path_lives_without_a_public_url(cli_env: dict[str, str]) -> None:
    assert mediabeat_in_process("orgs", "create", "first-hour", env=cli_env).returncode == 0
    create = ["monitors", "create", "--org", "first-hour", "--query", "harbour"]
    bare = mediabeat_in_process(*create[:2], "bare", *create[2:], env=cli_env)
    assert bare.returncode == 0, bare.stderr
    line = next(x for x in bare.stdout.splitlines() if x.startswith("its Atom feed"))
    assert ": /monitors/" in line
    assert line.endswith(".atom on this service's address (set MEDIABEAT_PUBLIC_URL to print the whole URL)")
    public = {**cli_env, "MEDIABEAT_PUBLIC_URL": "https://beat.example.org"}
    whole = mediabeat_in_process(*create[:2], "whole", *create[2:], env=public)
    line = next(x for x in whole.stdout.splitlines() if x.startswith("its Atom feed"))
    assert ": https://beat.example.org/monitors/" in line and line.endswith(".atom")


@pytest.mark.parametrize("revision", ["9999", "-1"])
def test_upgrading_to_a_revision_that_does_not_exist_is_bad_input(cli_env: dict[str, str], revision: str) -> None:
    out = mediabeat_in_process("db", "upgrade", "--", revision, env=cli_env)
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: cannot upgrade to '{revision}': ")
    assert "this version's newest revision is 00" in out.stderr and "unexpected" not in out.stderr


def test_a_misspelt_setting_is_named_with_the_one_it_may_mean(
    fresh_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("MEDIABEAT_CRAWL_BACH=50\n")
    monkeypatch.chdir(tmp_path)
    env = {**fresh_env, "MEDIABEAT_TICK_SECOND": "5", "MEDIABEAT_DEBUG": "", "MEDIABEAT_SMTP_URL_FILE": "/dev/null"}
    out = mediabeat_in_process("config", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines() == [
        "warning: MEDIABEAT_CRAWL_BACH is not a setting (did you mean MEDIABEAT_CRAWL_BATCH?): it is ignored",
        "warning: MEDIABEAT_TICK_SECOND is not a setting (did you mean MEDIABEAT_TICK_SECONDS?): it is ignored",
    ]


def test_serve_on_a_port_in_use_says_so_before_it_starts_anything(fresh_env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        out = mediabeat_in_process("serve", "--port", str(port), env=fresh_env)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use: stop what uses it, or choose another --port"
    )
    assert not (tmp_path / "fresh" / "mb.db").exists()  # nothing was migrated, and no admin made
