"""A CLI command loads only what it uses: the web server, migrations, the crawler and the story maths load on use."""

from __future__ import annotations

import json
import subprocess
import sys

# Each of these costs from tens of milliseconds to a second at start-up (`python -X importtime -m mediabeat`).
LOADED_ON_USE = [
    "fastapi",
    "uvicorn",
    "starlette",
    "alembic",
    "datasketch",
    "numpy",
    "scipy",
    "aiohttp",
    "trafilatura",
    "gcld3",
    "feedparser",
    "jinja2",
]

# Runs a command as `python -m mediabeat` does, then prints which of the modules above it loaded.
PROBE = """
import json, runpy, sys
sys.argv = ["mediabeat", *sys.argv[1:]]
try:
    runpy.run_module("mediabeat", run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(sorted(m for m in {names} if m in sys.modules)))
"""


def loaded(*args: str, env: dict[str, str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(names=LOADED_ON_USE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    found: list[str] = json.loads(out.stdout.splitlines()[-1])
    return found


def test_help_loads_none_of_the_heavy_modules(fresh_env: dict[str, str]) -> None:
    assert loaded("--help", env=fresh_env) == []


def test_a_database_command_loads_none_of_the_heavy_modules(cli_env: dict[str, str]) -> None:
    assert loaded("orgs", "list", "--json", env=cli_env) == []
