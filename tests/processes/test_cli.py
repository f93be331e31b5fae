"""The CLI as a user runs it: real processes, real database, exit codes and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.processes.harness import mediabeat, mediabeat_in_process
from tests.servers import free_port


def test_cron_next_prints_offsets_across_dst(fresh_env: dict[str, str]) -> None:
    out = mediabeat(
        "cron",
        "next",
        "0 3 * * *",
        "--timezone",
        "Europe/Riga",
        "--after",
        "2021-03-27T12:00:00+00:00",
        "--count",
        "3",
        env=fresh_env,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "2021-03-28T04:00:00+03:00",
        "2021-03-29T03:00:00+03:00",
        "2021-03-30T03:00:00+03:00",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cron", "next", "61 * * * *"], "error: invalid cron expression '61 * * * *': bad minute"),
        (["cron", "next", "* * * * *", "--timezone", "Nowhere/City"], "error: unknown time zone 'Nowhere/City'"),
        (["cron", "next", "* * * * *", "--after", "yesterday"], "error: --after 'yesterday' is not an ISO 8601"),
        (["cron", "explain", "0 0 * *"], "error: '0 0 * *' has 4 fields"),
    ],
)
def test_cron_errors_are_one_line_with_status_2(fresh_env: dict[str, str], args: list[str], message: str) -> None:
    out = mediabeat(*args, env=fresh_env)
    assert out.returncode == 2
    assert out.stderr.startswith(message)
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_cron_explain(fresh_env: dict[str, str]) -> None:
    out = mediabeat("cron", "explain", "*/10 * * * *", env=fresh_env)
    assert out.stdout.strip() == "Every 10 minutes (UTC)"


def test_commands_before_migration_say_what_to_do(fresh_env: dict[str, str], tmp_path: Path) -> None:
    out = mediabeat("tasks", "list", env=fresh_env)
    assert out.returncode == 1
    assert out.stderr.startswith(
        f"error: the database at {tmp_path}/fresh/mb.db has no MediaBeat schema yet: run `mediabeat db upgrade` first"
    )
    assert len(out.stderr.strip().splitlines()) == 1


def test_unreachable_database_is_one_line(fresh_env: dict[str, str]) -> None:
    env = {**fresh_env, "MEDIABEAT_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    out = mediabeat("db", "upgrade", env=env)
    assert out.returncode == 1
    assert out.stderr.startswith("error: cannot use the database at postgresql://nobody@127.0.0.1:1/none")
    assert "Traceback" not in out.stderr


def test_bad_setting_is_named(fresh_env: dict[str, str]) -> None:
    out = mediabeat("tasks", "list", env={**fresh_env, "MEDIABEAT_TICK_SECONDS": "often"})
    assert out.returncode == 2
    assert out.stderr.startswith("error: bad setting: MEDIABEAT_TICK_SECONDS: must be a number")


def test_tasks_lifecycle(cli_env: dict[str, str]) -> None:
    # The first command runs as a process of its own; the rest in this process.
    listed = json.loads(mediabeat("tasks", "list", "--json", env=cli_env).stdout)
    cleanup = next(t for t in listed if t["name"] == "nightly-cleanup")
    assert {"id", "name", "cron", "timezone", "enabled", "last_run_at", "last_status", "next_run_at"} <= cleanup.keys()
    assert cleanup["cron"] == "0 0 * * *"

    ran = mediabeat_in_process("tasks", "run", "nightly-cleanup", "--json", env=cli_env)
    assert ran.returncode == 0, ran.stderr
    run = json.loads(ran.stdout)
    assert run["status"] == "succeeded" and run["task"] == "nightly-cleanup" and run["trigger"] == "manual"
    assert run["result"]["task_runs_deleted"] == 0

    set_ok = mediabeat_in_process(
        "tasks",
        "set",
        "nightly-cleanup",
        "--cron",
        "*/5 * * * *",
        "--timezone",
        "Europe/Berlin",
        "--misfire",
        "skip",
        env=cli_env,
    )
    assert set_ok.returncode == 0, set_ok.stderr
    shown = json.loads(mediabeat_in_process("tasks", "show", "nightly-cleanup", "--json", env=cli_env).stdout)
    assert (shown["cron"], shown["timezone"], shown["misfire_policy"]) == ("*/5 * * * *", "Europe/Berlin", "skip")
    assert len(shown["upcoming"]) == 5 and shown["upcoming"][0].endswith("+01:00")

    bad = mediabeat_in_process("tasks", "set", "nightly-cleanup", "--timezone", "Mars/Olympus", env=cli_env)
    assert bad.returncode == 2 and bad.stderr.startswith("error: timezone: unknown time zone 'Mars/Olympus'")
    missing = mediabeat_in_process("tasks", "run", "no-such-task", env=cli_env)
    assert missing.returncode == 2 and missing.stderr.strip() == "error: no task named 'no-such-task'"

    assert mediabeat_in_process("tasks", "disable", "nightly-cleanup", env=cli_env).returncode == 0
    listed = json.loads(mediabeat_in_process("tasks", "list", "--json", env=cli_env).stdout)
    assert not next(t for t in listed if t["name"] == "nightly-cleanup")["enabled"]

    runs = json.loads(mediabeat_in_process("runs", "list", "--task", "nightly-cleanup", "--json", env=cli_env).stdout)
    assert [r["id"] for r in runs] == [run["id"]]
    assert mediabeat_in_process("runs", "list", "--status", "bogus", env=cli_env).returncode == 2
    stats = json.loads(mediabeat_in_process("stats", "--json", env=cli_env).stdout)
    assert (stats["total_tasks"], stats["total_runs"], stats["succeeded_runs"]) == (len(listed), 1, 1)


def test_serve_answers_healthz_and_runs_due_tasks(fresh_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    env = {**fresh_env, "ENABLE_SCHEDULER": "true", "MEDIABEAT_TICK_SECONDS": "1"}
    with open(tmp_path / "serve.log", "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "mediabeat", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 60
            runs: list[dict[str, object]] = []
            while time.monotonic() < deadline:
                try:
                    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    if health.status_code == 200:
                        listed = mediabeat("runs", "list", "--json", env=env)
                        runs = json.loads(listed.stdout) if listed.returncode == 0 else []
                        cleanup = [r for r in runs if r["task"] == "nightly-cleanup"]
                        if cleanup and cleanup[0]["status"] == "succeeded":
                            break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            assert health.json()["status"] == "ok"
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            assert ready.status_code == 200 and ready.json()["scheduler"] is True
            # nightly-cleanup has never run, so the loop runs it at start-up (the crawler tasks too).
            cleanup = [r for r in runs if r["task"] == "nightly-cleanup"]
            assert cleanup and cleanup[0]["trigger"] == "schedule"
        finally:
            server.terminate()
            # uvicorn shuts down cleanly, then re-raises SIGTERM so the exit status tells how it stopped.
            assert server.wait(timeout=30) in (0, -15)
            assert "Application shutdown complete" in (tmp_path / "serve.log").read_text()


def test_create_chain_and_delete_tasks(cli_env: dict[str, str]) -> None:
    # The first command runs as a process of its own; the rest in this process.
    created = mediabeat(
        "tasks",
        "create",
        "purge",
        "--handler",
        "nightly_cleanup",
        "--cron",
        "0 4 * * SUN",
        "--after",
        "nightly-cleanup",
        env=cli_env,
    )
    assert created.returncode == 0, created.stderr
    assert mediabeat_in_process("tasks", "run", "nightly-cleanup", env=cli_env).returncode == 0
    runs = json.loads(mediabeat_in_process("runs", "list", "--task", "purge", "--json", env=cli_env).stdout)
    assert [(r["trigger"], r["status"]) for r in runs] == [("dependency", "succeeded")]
    refused = mediabeat_in_process("tasks", "create", "x", "--handler", "nope", "--cron", "@daily", env=cli_env)
    assert refused.returncode == 2 and refused.stderr.startswith("error: handler: no handler named 'nope'")
    assert mediabeat_in_process("tasks", "delete", "purge", env=cli_env, stdin="n\n").returncode == 1
    assert mediabeat_in_process("tasks", "delete", "purge", "--yes", env=cli_env).returncode == 0
    names = [t["name"] for t in json.loads(mediabeat_in_process("tasks", "list", "--json", env=cli_env).stdout)]
    assert "purge" not in names


def test_a_table_printed_to_a_pipe_keeps_every_cell_whole(cli_env: dict[str, str]) -> None:
    env = {name: value for name, value in cli_env.items() if name != "COLUMNS"}  # as a pipe or a CI log has it
    url = "https://news.example.invalid/sections/world/europe/politics/feeds/latest-headlines-in-full.xml?edition=uk"
    assert mediabeat_in_process("orgs", "create", "desk", env=env).returncode == 0
    assert mediabeat_in_process("feeds", "add", url, "--org", "desk", "--no-check", env=env).returncode == 0
    listed = mediabeat("feeds", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert url in listed.stdout and "…" not in listed.stdout, listed.stdout
    header = listed.stdout.splitlines()[1]
    assert all(name in header for name in ("active", "priority", "last status", "failures", "interval")), header
