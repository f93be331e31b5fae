"""Chains through the CLI: fan-in with --after repeated, --on-failure-of, and a loop refused by name.

The first command runs as a process of its own; the rest in this process (tests/processes/harness.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from subprocess import CompletedProcess

from tests.processes.harness import mediabeat, mediabeat_in_process


def test_tasks_create_and_set_chains_and_refuse_a_loop(cli_env: dict[str, str]) -> None:
    def create(name: str, *chain: str, run: Callable[..., CompletedProcess[str]] = mediabeat_in_process) -> None:
        args = ("tasks", "create", name, "--handler", "nightly_cleanup", "--cron", "0 4 1 1 *", *chain)
        out = run(*args, env=cli_env)
        assert out.returncode == 0, out.stderr

    create("extract", run=mediabeat)
    create("load", "--after", "extract")
    create("report", "--after", "extract", "--after", "load", "--on-failure-of", "nightly-cleanup")
    shown = json.loads(mediabeat_in_process("tasks", "show", "report", "--json", env=cli_env).stdout)
    assert (shown["after"], shown["on_failure_of"]) == (["extract", "load"], ["nightly-cleanup"])
    text = mediabeat_in_process("tasks", "show", "extract", env=cli_env).stdout
    assert "downstream: load (on success), report (on success)" in text

    loop = mediabeat_in_process("tasks", "set", "extract", "--on-failure-of", "report", env=cli_env)
    assert loop.returncode == 2 and "Traceback" not in loop.stderr
    assert loop.stderr.strip() == (
        "error: on_failure_of: that would make a loop: extract -> report -(on failure)-> extract"
    )

    # A fan-in runs once both upstreams have succeeded (run here, in this process).
    assert mediabeat_in_process("tasks", "run", "extract", env=cli_env).returncode == 0
    runs = json.loads(mediabeat_in_process("runs", "list", "--task", "report", "--json", env=cli_env).stdout)
    assert [(r["trigger"], r["status"]) for r in runs] == [("dependency", "succeeded")]
    assert runs[0]["triggered_by"].startswith("load run ")  # the last of its two upstreams to succeed

    cleared = mediabeat_in_process("tasks", "set", "report", "--after", "", "--on-failure-of", "", env=cli_env)
    assert cleared.returncode == 0, cleared.stderr
    shown = json.loads(mediabeat_in_process("tasks", "show", "report", "--json", env=cli_env).stdout)
    assert (shown["after"], shown["on_failure_of"], shown["after_task_id"]) == ([], [], None)
