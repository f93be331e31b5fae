"""Real worker processes on a real PostgreSQL, on a shared simulated clock.

Three workers over 48 simulated hours, a rolling restart, and a killed node: every
occurrence of every task runs exactly once and none is missed.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .harness import Workers, base_env, occurrences, scheduled_runs, seed_tasks, wait_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.xdist_group("worker-processes"),
    pytest.mark.parametrize("backend", ["postgres"], indirect=True),
    pytest.mark.timeout(300),  # generous: worker start-up is slow on a loaded machine
]
EPOCH = datetime(2026, 3, 27, 0, 0, tzinfo=UTC)  # the weekend Europe/Paris moves to summer time
TASKS: dict[str, dict[str, Any]] = {
    "quarter-hourly": {"cron": "*/15 * * * *", "handler": "noop"},
    "hourly": {"cron": "0 * * * *", "handler": "noop"},
    "three-hourly": {"cron": "15 */3 * * *", "handler": "noop"},
    "paris-morning": {"cron": "30 2 * * *", "handler": "noop", "timezone": "Europe/Paris"},
}


def sim_env(database_url: str, *, speed: float, origin: float) -> dict[str, str]:
    """Settings in simulated seconds: frequent heartbeats; nothing reaped or misfired by CPU load."""
    half_second = str(min(300.0, speed / 2))  # settings cap heartbeats at 300 s
    return base_env(
        database_url,
        clock_epoch=EPOCH.isoformat(),
        clock_speed=str(speed),
        clock_origin=str(origin),
        heartbeat_seconds=half_second,
        node_heartbeat_seconds=half_second,
        stale_after_seconds=str(speed * 20),
        misfire_grace_seconds=str(30 * 86400),  # a slow start on a loaded machine still catches up every occurrence
        tick_seconds=str(min(3600.0, speed * 5)),
        log_level="WARNING",
    )


def caught_up(database_url: str, end: datetime, *, ignore_node: str | None = None) -> bool:
    """Every task has run up to `end`, and no run up to then is still in flight (a killed node's aside)."""
    runs = scheduled_runs(database_url)
    # An occurrence the killed node claimed counts as reached (it must never run again); only its
    # in-flight run is set aside, since the reaper abandons it later.
    last = {name: max((r.scheduled_for for r in runs if r.task == name), default=EPOCH) for name in TASKS}
    pending = [r for r in runs if r.status == "running" and r.scheduled_for <= end and r.node_id != ignore_node]
    return not pending and all(
        when >= occurrences(TASKS[n]["cron"], EPOCH, end, TASKS[n].get("timezone", "UTC"))[-1]
        for n, when in last.items()
    )


def check_exactly_once(
    database_url: str, end: datetime, *, allowed: set[str] = frozenset({"succeeded"})
) -> Counter[str]:  # type: ignore[assignment]
    runs = scheduled_runs(database_url)
    per_occurrence = Counter((r.task, r.scheduled_for) for r in runs)
    assert max(per_occurrence.values()) == 1, [k for k, n in per_occurrence.items() if n > 1][:5]
    for name, values in TASKS.items():
        expected = occurrences(values["cron"], EPOCH, end, values.get("timezone", "UTC"))
        ran = sorted(r.scheduled_for for r in runs if r.task == name and r.scheduled_for <= end)
        assert ran == expected, f"{name}: missing {sorted(set(expected) - set(ran))[:5]}"
    statuses = Counter(r.status for r in runs if r.scheduled_for <= end)
    assert set(statuses) <= allowed, statuses
    return Counter(r.node_id for r in runs)


def test_three_workers_over_48_simulated_hours(database_url: str, tmp_path: Path) -> None:
    speed = 48 * 3600 / 40  # 48 hours in 40 s
    end = EPOCH + timedelta(hours=47)  # the last simulated hour may be cut off by the shutdown
    seed_tasks(database_url, TASKS, now=EPOCH)
    origin = time.time() + 3
    workers = Workers(env=sim_env(database_url, speed=speed, origin=origin), logs=tmp_path)
    try:
        workers.wait_ready(*[workers.start() for _ in range(3)], timeout=120)
        time.sleep(max(5.0, origin + 40 - time.time()))
        # On a loaded machine the workers may trail the simulated clock a little: let them reach the end.
        wait_for(lambda: caught_up(database_url, end), timeout=120, what="the runs to reach 47 h")
    finally:
        codes = workers.stop_all()
    assert set(codes.values()) == {0}, workers.all_logs()
    nodes = check_exactly_once(database_url, end)
    assert len(occurrences("*/15 * * * *", EPOCH, end)) == 188
    assert len(nodes) == 3, f"the work should spread over the workers: {nodes}"


def test_rolling_restart_and_a_killed_node_miss_nothing(database_url: str, tmp_path: Path) -> None:
    speed = 600.0  # an hour in 6 s
    seed_tasks(database_url, TASKS, now=EPOCH)
    origin = time.time() + 3
    workers = Workers(env=sim_env(database_url, speed=speed, origin=origin), logs=tmp_path)
    try:
        names = [workers.start() for _ in range(3)]
        workers.wait_ready(*names, timeout=120)
        time.sleep(max(0.0, origin - time.time()) + 3)
        replacements = []
        for name in names:  # one at a time: stop, then start its replacement
            assert workers.stop(name) == 0, workers.log(name)
            replacements.append(workers.start())
            time.sleep(2)
        workers.wait_ready(*replacements, timeout=120)
        workers.kill(replacements[0])  # and one node dies without a word
        time.sleep(6)
        end = EPOCH + timedelta(seconds=(time.time() - origin) * speed) - timedelta(minutes=15)
        killed = f"node-{replacements[0]}"
        wait_for(lambda: caught_up(database_url, end, ignore_node=killed), timeout=90, what="the survivors to catch up")
    finally:
        codes = workers.stop_all()
    assert set(codes.values()) == {0}, workers.all_logs()
    # A run the killed node had in flight stays as its one row, abandoned (or still running: the reaper
    # abandons it 20 real seconds after the kill); it never runs twice.
    nodes = check_exactly_once(database_url, end, allowed={"succeeded", "running", "abandoned"})
    assert len(nodes) >= 4, nodes
