"""An option or argument the CLI cannot use is named with what it accepts, not in the validator's words."""

from __future__ import annotations

import pytest

from tests.processes.harness import mediabeat_in_process


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["feeds", "show", "abc"], "Invalid value for 'feed_id': must be a whole number (got 'abc')"),
        (["jobs", "list", "--limit", "abc"], "Invalid value for '--limit': must be a whole number (got 'abc')"),
        (["articles", "list", "--limit", "0"], "Invalid value for '--limit': must be at least 1 (got '0')"),
        (
            ["jobs", "list", "--status", "bogus"],
            "Invalid value for '--status': must be one of queued, running, succeeded, failed (got 'bogus')",
        ),
        (
            ["articles", "search", "harbour", "--format", "xml"],
            "Invalid value for '--format': must be one of text, json, csv, jsonl (got 'xml')",
        ),
    ],
)
def test_a_bad_parameter_says_what_it_accepts(fresh_env: dict[str, str], args: list[str], sentence: str) -> None:
    out = mediabeat_in_process(*args, env=fresh_env)
    assert out.returncode == 2
    # The usage panel wraps long lines at the terminal's width: compare the words, not the layout.
    words = " ".join(out.stderr.replace("│", " ").split())
    assert sentence in words, out.stderr
    assert "Input should" not in out.stderr and "Value error" not in out.stderr and "Traceback" not in out.stderr
