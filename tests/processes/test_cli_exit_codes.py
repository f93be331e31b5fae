"""One exit-status rule for every command group: 2 when the command line must change (a value that
breaks a rule, a name or id that matches nothing), 1 when the current state refuses a well-formed
request (something of that name exists already, a run has finished) or the work failed."""

from __future__ import annotations

import pytest

from tests.processes.harness import mediabeat_in_process

PASSWORD = "a-good-password-1\n"

NOT_FOUND = [
    (["feeds", "show", "999"], "no feed with id 999"),
    (["feeds", "list", "--org", "nowhere"], "no organisation named 'nowhere'"),
    (["articles", "show", "999"], "no article with id 999"),
    (["stories", "show", "999"], "no story with id 999"),
    (["orgs", "delete", "nowhere", "--yes"], "no organisation named 'nowhere'"),
    (["monitors", "delete", "nothing", "--org", "desk"], "no monitor"),
    (["tasks", "run", "nothing"], "no task named 'nothing'"),
    (["tasks", "delete", "nothing", "--yes"], "no task named 'nothing'"),
    (["tasks", "mute", "nothing", "--for", "1h"], "no task named 'nothing'"),
    (["runs", "show", "999"], "no run with id 999"),
    (["runs", "cancel", "999"], "no run with id 999"),
    (["users", "set", "nobody@example.test", "--inactive"], "no user with email nobody@example.test"),
    (["tokens", "revoke", "999"], "no token with id 999"),
]
BAD_VALUE = [
    (["cron", "next", "61 * * * *"], "invalid cron expression"),
    (["tasks", "set", "nightly-cleanup", "--timezone", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
    (["users", "set", "analyst@example.test"], "nothing to change"),
]
ALREADY_THERE = [
    (["orgs", "create", "desk"], "organisation 'desk' already exists"),
    (["monitors", "create", "harbour", "--org", "desk", "--query", "harbour"], "a monitor named 'harbour' already"),
    (["users", "create", "analyst@example.test", "--org", "desk", "--password-stdin"], "exists already"),
    (["tasks", "create", "nightly-cleanup", "--handler", "nightly_cleanup", "--cron", "@daily"], "exists already"),
    (["runs", "cancel", "1"], "has already finished"),
]


@pytest.fixture
def desk_env(cli_env: dict[str, str]) -> dict[str, str]:
    """An organisation `desk` with a monitor `harbour`, a user, and one finished run (id 1)."""
    for args, stdin in (
        (["orgs", "create", "desk"], None),
        (["monitors", "create", "harbour", "--org", "desk", "--query", "harbour"], None),
        (["users", "create", "analyst@example.test", "--org", "desk", "--password-stdin"], PASSWORD),
        (["tasks", "run", "nightly-cleanup"], None),
    ):
        made = mediabeat_in_process(*args, env=cli_env, stdin=stdin)
        assert made.returncode == 0, (args, made.stderr)
    return cli_env


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [(a, m, 2) for a, m in NOT_FOUND + BAD_VALUE] + [(a, m, 1) for a, m in ALREADY_THERE],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_every_group_exits_2_for_what_must_be_retyped_and_1_for_a_conflict(
    desk_env: dict[str, str], args: list[str], message: str, status: int
) -> None:
    out = mediabeat_in_process(*args, env=desk_env, stdin=PASSWORD)
    assert (out.returncode, out.stdout) == (status, ""), out
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], out.stderr
