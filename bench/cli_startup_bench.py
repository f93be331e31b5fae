"""CPU time of a CLI command's start, beside a baseline that loads what every command used to load.

    .venv/bin/python bench/cli_startup_bench.py [--runs 5]

Each figure is the median CPU time (user + system, of the child process) over `--runs` runs:
`mediabeat --help`, `mediabeat orgs list --json` on a fresh SQLite database, and the baseline,
a process that imports the CLI together with what it imported at start before those modules
were loaded on use (FastAPI, uvicorn, Alembic, datasketch with numpy and scipy, aiohttp) and
makes the dummy password hash. CPU time rather than wall time: on a shared machine the wall
time of a process start varies several-fold with the load; the load average is printed too.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

EAGER_BEFORE = (
    "import mediabeat.cli, fastapi, uvicorn, alembic.command, datasketch, aiohttp, mediabeat.demo.site;"
    "from argon2 import PasswordHasher; PasswordHasher().hash('x')"
)


def cpu_seconds(args: list[str], env: dict[str, str]) -> float:
    """CPU time (user + system) that one child process spent."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median_cpu(args: list[str], env: dict[str, str], runs: int) -> float:
    cpu_seconds(args, env)  # warm the file cache
    return statistics.median(cpu_seconds(args, env) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "MEDIABEAT_DATABASE_URL": f"sqlite:///{Path(folder) / 'mb.db'}"}
        cli = [sys.executable, "-m", "mediabeat"]
        subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
        baseline = median_cpu([sys.executable, "-c", EAGER_BEFORE], env, runs)
        help_cpu = median_cpu([*cli, "--help"], env, runs)
        list_cpu = median_cpu([*cli, "orgs", "list", "--json"], env, runs)
    print(f"baseline (the CLI with what it used to load at start): {baseline:.2f} s CPU")
    print(f"mediabeat --help:                                      {help_cpu:.2f} s CPU ({help_cpu / baseline:.0%})")
    print(f"mediabeat orgs list --json:                            {list_cpu:.2f} s CPU ({list_cpu / baseline:.0%})")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
