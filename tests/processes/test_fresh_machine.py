"""`make test` on a machine with Python and make only: the browser tests skip, in one line, and pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_browser_tests_without_chromium_skip_in_one_line_and_exit_0(tmp_path: Path) -> None:
    env = {**os.environ, "MEDIABEAT_TEST_CHROMIUM": str(tmp_path / "no-chromium")}
    env.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/browser", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    hints = [line for line in done.stdout.splitlines() if "apt-get install -y chromium" in line]
    assert len(hints) == 1, done.stdout
    assert hints[0].startswith("SKIPPED [")
    assert " passed" not in done.stdout and " failed" not in done.stdout
