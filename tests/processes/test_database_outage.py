"""PostgreSQL unreachable for 20 s while real workers run.

The workers log, back off and carry on by themselves, and the misfire policy covers the gap.

The workers reach PostgreSQL through a TCP proxy on 127.0.0.1 that the test cuts, so the
shared server keeps running for everyone else.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from .harness import Workers, base_env, occurrences, scheduled_runs, seed_tasks
from .proxy import CuttableProxy

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.xdist_group("worker-processes"),
    pytest.mark.parametrize("backend", ["postgres"], indirect=True),
    pytest.mark.timeout(300),  # generous: worker start-up is slow on a loaded machine
]
EPOCH = datetime(2026, 5, 1, tzinfo=UTC)
SPEED = 30.0  # a simulated minute every 2 s
TASKS: dict[str, dict[str, Any]] = {
    "every-minute": {"cron": "* * * * *", "handler": "noop", "misfire_policy": "run_once"},
    "every-two": {"cron": "*/2 * * * *", "handler": "noop", "misfire_policy": "skip"},
}


def test_workers_ride_out_a_20_second_database_outage(database_url: str, tmp_path: Path) -> None:
    url = make_url(database_url)
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    seed_tasks(database_url, TASKS, now=EPOCH)
    origin = time.time() + 2
    env = base_env(
        proxied,
        clock_epoch=EPOCH.isoformat(),
        clock_speed=str(SPEED),
        clock_origin=str(origin),
        heartbeat_seconds="30",
        node_heartbeat_seconds="30",
        stale_after_seconds="3600",  # runs in flight during the outage are not reaped
        misfire_grace_seconds="120",  # 4 real seconds: the outage makes misfires
        log_level="WARNING",
    )
    workers = Workers(env=env, logs=tmp_path)
    try:
        names = [workers.start(), workers.start()]
        workers.wait_ready(*names)
        time.sleep(max(0.0, origin - time.time()) + 6)
        proxy.cut()
        time.sleep(20)
        assert sorted(workers.alive()) == names, "the workers carry on through the outage"
        proxy.restore()
        restored_sim = EPOCH + timedelta(seconds=(time.time() - origin) * SPEED)
        time.sleep(14)
        assert sorted(workers.alive()) == names
    finally:
        codes = workers.stop_all()
        proxy.close()
    assert set(codes.values()) == {0}, workers.all_logs()
    logs = workers.all_logs()
    assert "retrying in" in logs, logs  # the loop logged the failure and backed off
    assert "lost the LISTEN connection" in logs and "listening for task changes again" in logs, logs

    runs = scheduled_runs(database_url)
    assert len({(r.task, r.scheduled_for) for r in runs}) == len(runs), "no occurrence ran twice"
    for name, values in TASKS.items():
        rows = sorted((r for r in runs if r.task == name), key=lambda r: r.scheduled_for)
        expected = occurrences(values["cron"], EPOCH, rows[-1].scheduled_for)
        accounted = sum(r.missed for r in rows) + sum(1 for r in rows if r.status != "skipped")
        assert accounted == len(expected), f"{name}: every occurrence ran or was recorded as missed"
        assert any(r.missed > 0 for r in rows), f"{name}: the misfire policy handled the outage"
        after = [r for r in rows if r.scheduled_for > restored_sim and r.status == "succeeded"]
        assert after, f"{name}: runs go on after the outage"
        assert {r.status for r in rows} <= {"succeeded", "skipped", "abandoned"}
        # A claim whose COMMIT went through as the proxy cut the connection: the node never heard,
        # never ran it, and abandoned it itself once the database was back.
        for run in (r for r in rows if r.status == "abandoned"):
            assert "claimed the run as its connection to the database broke" in (run.error or ""), run
