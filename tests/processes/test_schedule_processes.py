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

from .harness import Workers, base_env, occurrences, scheduled_runs, seed_tasks

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.xdist_group("worker-processes"),
    pytest.mark.parametrize("backend", ["postgres"], indirect=True),
    pytest.mark.timeout(150),
]
EPOCH = datetime(2026, 3, 27, 0, 0, tzinfo=UTC)  # the weekend Europe/Paris moves to summer time
TASKS: dict[str, dict[str, Any]] = {
    "every-5-min": {"cron": "*/5 * * * *", "handler": "noop"},
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
        misfire_grace_seconds="86400",
        tick_seconds=str(min(3600.0, speed * 5)),
        log_level="WARNING",
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
    seed_tasks(database_url, TASKS, now=EPOCH)
    origin = time.time() + 3
    workers = Workers(env=sim_env(database_url, speed=speed, origin=origin), logs=tmp_path)
    try:
        for _ in range(3):
            workers.start()
        time.sleep(max(0.0, origin - time.time()) + 40)
    finally:
        codes = workers.stop_all()
    assert set(codes.values()) == {0}, workers.all_logs()
    end = EPOCH + timedelta(hours=47)  # the last simulated hour may be cut off by the shutdown
    nodes = check_exactly_once(database_url, end)
    assert len(occurrences("*/5 * * * *", EPOCH, end)) == 564
    assert len(nodes) == 3, f"the work should spread over the workers: {nodes}"


def test_rolling_restart_and_a_killed_node_miss_nothing(database_url: str, tmp_path: Path) -> None:
    speed = 600.0  # an hour in 6 s
    seed_tasks(database_url, TASKS, now=EPOCH)
    origin = time.time() + 3
    workers = Workers(env=sim_env(database_url, speed=speed, origin=origin), logs=tmp_path)
    try:
        names = [workers.start() for _ in range(3)]
        workers.wait_ready(*names)
        time.sleep(max(0.0, origin - time.time()) + 3)
        for name in names:  # one at a time: stop, then start its replacement
            assert workers.stop(name) == 0, workers.log(name)
            workers.wait_ready(workers.start())
            time.sleep(1)
        workers.kill(sorted(workers.procs)[0])  # and one node dies without a word
        time.sleep(6)
    finally:
        codes = workers.stop_all()
    assert set(codes.values()) == {0}, workers.all_logs()
    elapsed = (time.time() - origin) * speed
    end = EPOCH + timedelta(seconds=elapsed) - timedelta(minutes=15)
    # A run the killed node had in flight stays as its one row, abandoned (or still running: the reaper
    # abandons it 20 real seconds after the kill); it never runs twice.
    nodes = check_exactly_once(database_url, end, allowed={"succeeded", "running", "abandoned"})
    assert len(nodes) >= 4, nodes
