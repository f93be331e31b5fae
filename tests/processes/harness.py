"""Start, stop and kill real worker processes on a test database, and read what they did."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mediabeat.db.engine import sync_url
from mediabeat.db.tables import scheduler_nodes, scheduler_task_runs, scheduler_tasks
from mediabeat.schedule import parse_schedule

REPO = Path(__file__).resolve().parents[2]


def mediabeat(
    *args: str, env: dict[str, str], stdin: str | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the `mediabeat` command in a process of its own, as a person would, and capture what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "mediabeat", *args],
        env=env,
        input=stdin,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def mediabeat_in_process(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a `mediabeat` command inside this process, through the same entry point as `mediabeat()`.

    The exit status, stdout and stderr are the ones a process gives (`main` turns errors into one
    line and a status here too), without a process's start-up: Python and the imports cost about
    a second a command, which a test of many commands pays many times. A test that checks what
    only a process shows (start-up, signals, the environment as a shell passes it) uses
    `mediabeat()`. The process environment is `env` for the command's duration; the test must not
    run an event loop of its own (the command starts one).
    """
    from click.testing import CliRunner

    from mediabeat.cli import main

    environ: dict[str, str | None] = {name: None for name in os.environ if name not in env}
    environ.update(env)
    argv = sys.argv
    with CliRunner().isolation(input=stdin, env=environ) as (stdout, stderr, _):
        sys.argv = ["mediabeat", *args]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        finally:
            sys.argv = argv
            sys.stdout.flush()
            sys.stderr.flush()
        out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
    return subprocess.CompletedProcess(["mediabeat", *args], code, out, err)


@dataclass
class Workers:
    """A set of `python -m tests.processes.worker_main` processes sharing one environment."""

    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    count: int = 0

    def start(self, **extra_env: str) -> str:
        self.count += 1
        name = f"w{self.count}"
        env = dict(self.env, MEDIABEAT_NODE_ID=f"node-{name}", **extra_env)
        log = (self.logs / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "tests.processes.worker_main"],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return name

    def wait_ready(self, *names: str, timeout: float = 30) -> None:
        """Wait until the workers have registered as running nodes (their signal handlers are in place by then)."""
        eng = engine(self.env["MEDIABEAT_DATABASE_URL"])
        wanted = {f"node-{name}" for name in names}

        def registered() -> bool:
            with eng.connect() as conn:
                rows = conn.execute(
                    sa.select(scheduler_nodes.c.id).where(
                        scheduler_nodes.c.id.in_(wanted), scheduler_nodes.c.stopped_at.is_(None)
                    )
                ).all()
            return len(rows) == len(wanted)

        try:
            wait_for(registered, timeout=timeout, what=f"workers {sorted(names)} to register")
        finally:
            eng.dispose()

    def stop(self, name: str, timeout: float = 60) -> int:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=timeout)

    def pause(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGCONT)

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.kill()  # SIGKILL: no clean-up of any kind
        proc.wait(timeout=10)

    def alive(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is None]

    def stop_all(self) -> dict[str, int]:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {name: proc.wait(timeout=60) for name, proc in self.procs.items()}
        self.procs.clear()
        return codes

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def all_logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.logs.glob("*.log"))
        )


def base_env(database_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIABEAT_") or k == "MEDIABEAT_TEST_POSTGRES_URL"}
    env.update(MEDIABEAT_DATABASE_URL=database_url, MEDIABEAT_LOG_LEVEL="INFO", PYTHONPATH=str(REPO))
    env.update({f"MEDIABEAT_{k.upper()}": v for k, v in settings.items()})
    return env


def engine(database_url: str) -> sa.Engine:
    return sa.create_engine(sync_url(database_url), poolclass=sa.pool.NullPool)


def seed_tasks(database_url: str, tasks: dict[str, dict[str, Any]], *, now: datetime) -> None:
    """Disable the built-in tasks and add `tasks` (name -> column values), first due at their next fire after now."""
    eng = engine(database_url)
    with eng.begin() as conn:
        conn.execute(scheduler_tasks.update().values(enabled=False))
        for name, values in tasks.items():
            cron = values["cron"]
            first = parse_schedule(cron, values.get("timezone", "UTC")).next_fire(now)
            conn.execute(
                scheduler_tasks.insert().values(
                    name=name,
                    overlap_policy="allow",
                    next_run_at=first,
                    last_run_at=now,
                    created_at=now,
                    updated_at=now,
                    **values,
                )
            )
    eng.dispose()


def scheduled_runs(database_url: str) -> list[sa.Row[Any]]:
    eng = engine(database_url)
    with eng.connect() as conn:
        rows = conn.execute(
            sa.select(
                scheduler_tasks.c.name.label("task"),
                scheduler_task_runs.c.scheduled_for,
                scheduler_task_runs.c.status,
                scheduler_task_runs.c.node_id,
                scheduler_task_runs.c.missed,
                scheduler_task_runs.c.started_at,
                scheduler_task_runs.c.error,
            )
            .join(scheduler_tasks)
            .where(scheduler_task_runs.c.trigger == "schedule")
        ).all()
    eng.dispose()
    return list(rows)


def occurrences(cron: str, start: datetime, end: datetime, timezone: str = "UTC") -> list[datetime]:
    found = []
    for fire in parse_schedule(cron, timezone).fire_times(start):
        if fire > end:
            break
        found.append(fire)
    return found


def wait_for(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def iter_pairs(rows: list[sa.Row[Any]]) -> Iterator[tuple[str, datetime]]:
    for row in rows:
        yield row.task, row.scheduled_for
