"""Alert rules per task on a real database, sending to real webhooks on loopback: each rule fires once, across nodes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mediabeat import telemetry
from mediabeat.clock import FakeClock
from mediabeat.crawler.http import ClientConfig, SafeClient
from mediabeat.db.engine import Database
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.domain.task_alerts import AlertRuleChanges
from mediabeat.scheduler.alerts import WebhookAlerter
from mediabeat.scheduler.service import SchedulerService
from mediabeat.scheduler.task_alerting import OwnChannelSetup
from mediabeat.testing import BlockingHandler, build_test_scheduler
from tests.integration.seeds import only_cleanup_seeded
from tests.integration.test_alerts import Flaky, Webhook

T0 = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)  # rules are set here; the task is due at 09:00
DUE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def own_hook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def global_hook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


async def no_wait(seconds: float) -> None:
    return None


def own_channels(*, loopback: bool) -> OwnChannelSetup:
    config = ClientConfig(user_agent="MediaBeat tests", allow_loopback=loopback)
    return OwnChannelSetup(client_factory=lambda: SafeClient(config), sleep=no_wait)


def scheduler(
    db: Database, clock: FakeClock, hook: Webhook, *, node: str = "node-a", handlers: dict[str, Any] | None = None
) -> SchedulerService:
    service, _ = build_test_scheduler(
        db,
        clock=clock,
        handlers=handlers or {"fetch": Flaky()},
        node_id=node,
        alerts=WebhookAlerter(url=hook.url),
        own_alert_channels=own_channels(loopback=True),
    )
    return service


async def hourly_task(db: Database, **values: Any) -> int:
    task = await SchedulerStore(db).create_task(
        {"name": "fetch", "handler": "fetch", "cron": "0 * * * *", "next_run_at": DUE, **values}, T0
    )
    return task.id


def sent(kind: str) -> float:
    labels = {"channel": "webhook", "kind": kind, "result": "sent"}
    return telemetry.REGISTRY.get_sample_value("mediabeat_alerts_total", labels) or 0.0


async def test_the_failure_alert_waits_for_n_failures_in_a_row_and_recovery_follows(
    db: Database, global_hook: Webhook
) -> None:
    clock = FakeClock(T0)
    handler = Flaky()
    service = scheduler(db, clock, global_hook, handlers={"fetch": handler})
    task_id = await hourly_task(db)
    await service.set_alert_rules(task_id, AlertRuleChanges(after_failures=3))
    runs = [await service.run_now_and_wait("fetch") for _ in range(4)]
    handler.failing = False
    await service.run_now_and_wait("fetch")
    await service.alerting.drain()
    assert [(a["kind"], a["run_id"]) for a in global_hook.received] == [
        ("failure", runs[2].id),
        ("recovery", runs[-1].id + 1),
    ]
    recorded = await service.recent_alerts(task_id)
    assert [(a.kind, a.destination, a.muted) for a in recorded] == [
        ("recovery", "global", False),
        ("failure", "global", False),
    ]


async def test_two_runs_failing_at_once_send_one_failure_alert_for_their_streak(
    db: Database, global_hook: Webhook
) -> None:
    clock = FakeClock(T0)
    both_started = asyncio.Barrier(2)

    async def fails_together(ctx: Any) -> dict[str, Any]:
        await both_started.wait()
        raise RuntimeError("upstream is down")

    service = scheduler(db, clock, global_hook, handlers={"fetch": fails_together})
    task_id = await hourly_task(db, overlap_policy="allow")
    await service.set_alert_rules(task_id, AlertRuleChanges(after_failures=1))
    runs = [await service.run_now("fetch") for _ in range(2)]
    ended = await asyncio.gather(*(service.wait_for_run(run_id) for run_id in runs))
    assert {r.status for r in ended} == {"failed"}
    await service.alerting.drain()
    assert [a["kind"] for a in global_hook.received] == ["failure"]
    assert [a.kind for a in await service.recent_alerts(task_id)] == ["failure"]


async def test_late_is_sent_once_when_two_nodes_check_at_the_same_moment(db: Database, global_hook: Webhook) -> None:
    clock = FakeClock(T0)
    node_a = scheduler(db, clock, global_hook, node="node-a")
    node_b = scheduler(db, clock, global_hook, node="node-b")
    task_id = await hourly_task(db)
    await node_a.set_alert_rules(task_id, AlertRuleChanges(late_after_s=300))
    before = sent("late")
    clock.set(DUE + timedelta(seconds=299))
    assert await node_a.check_alerts() == 0
    clock.set(DUE + timedelta(minutes=10))  # no node claimed 09:00 (say every loop was stuck)
    assert sorted(await asyncio.gather(node_a.check_alerts(), node_b.check_alerts())) == [0, 1]
    assert await node_a.check_alerts() == 0 and await node_b.check_alerts() == 0
    await node_a.alerting.drain()
    await node_b.alerting.drain()
    [late] = global_hook.received
    assert late["kind"] == "late" and late["task"] == "fetch" and late["run_id"] is None
    assert "the run due at 2026-03-02 09:00 UTC has not started" in late["text"]
    assert sent("late") - before == 1


async def test_missing_occurrences_are_reported_once_after_the_scheduler_skipped_them(
    db: Database, global_hook: Webhook
) -> None:
    clock = FakeClock(T0)
    service, loop = build_test_scheduler(
        db, clock=clock, handlers={"fetch": Flaky()}, alerts=WebhookAlerter(url=global_hook.url)
    )
    await only_cleanup_seeded(db)
    await SchedulerStore(db).update_task(1, {"enabled": False}, T0)  # the seeded cleanup task
    task_id = await hourly_task(db, misfire_policy="skip", last_run_at=T0 - timedelta(hours=1))
    await service.set_alert_rules(task_id, AlertRuleChanges(missing=True))
    clock.set(DUE + timedelta(hours=2, minutes=30))  # the node was down from 08:30 to 11:30
    assert await service.check_alerts() == 0  # the scheduler has not moved past them yet
    assert (await loop.step()).started == 0  # skip: 09:00, 10:00 and 11:00 pass unrun
    assert await service.check_alerts() == 1
    assert await service.check_alerts() == 0
    await service.alerting.drain()
    [missing] = global_hook.received
    assert (missing["kind"], missing["missed"]) == ("missing", 3)
    assert (missing["first"], missing["last"]) == (DUE.isoformat(), (DUE + timedelta(hours=2)).isoformat())


async def test_a_slow_run_is_reported_once_while_it_runs(db: Database, global_hook: Webhook) -> None:
    clock = FakeClock(T0)
    blocking = BlockingHandler()
    service = scheduler(db, clock, global_hook, handlers={"fetch": blocking})
    task_id = await hourly_task(db)
    await service.set_alert_rules(task_id, AlertRuleChanges(slower_than_s=60))
    run_id = await service.run_now("fetch")
    await blocking.started.wait()
    clock.advance(60)
    assert await service.check_alerts() == 0
    clock.advance(1)
    assert await service.check_alerts() == 1
    assert await service.check_alerts() == 0
    blocking.release()
    await service.wait_idle(within=5)
    await service.alerting.drain()
    [slow] = global_hook.received
    assert (slow["kind"], slow["run_id"], slow["limit_s"]) == ("slow", run_id, 60.0)


async def test_mute_records_alerts_without_sending_them_and_the_recovery_after_it_goes_out(
    db: Database, global_hook: Webhook
) -> None:
    clock = FakeClock(T0)
    handler = Flaky()
    service = scheduler(db, clock, global_hook, handlers={"fetch": handler})
    task_id = await hourly_task(db)
    await service.set_alert_rules(task_id, AlertRuleChanges(mute_until=T0 + timedelta(hours=1)))
    await service.run_now_and_wait("fetch")
    await service.alerting.drain()
    assert global_hook.received == []
    [muted] = await service.recent_alerts(task_id)
    assert (muted.kind, muted.muted) == ("failure", True)
    clock.advance(3601)
    await service.run_now_and_wait("fetch")  # still the same outage: no second failure alert
    handler.failing = False
    await service.run_now_and_wait("fetch")
    await service.alerting.drain()
    assert [a["kind"] for a in global_hook.received] == ["recovery"]


async def test_a_tasks_own_webhook_gets_its_alerts_instead_of_the_global_one(
    db: Database, global_hook: Webhook, own_hook: Webhook
) -> None:
    clock = FakeClock(T0)
    service = scheduler(db, clock, global_hook)
    task_id = await hourly_task(db)
    await service.set_alert_rules(task_id, AlertRuleChanges(webhook_url=own_hook.url))
    await service.run_now_and_wait("fetch")
    await service.alerting.drain()
    assert [a["kind"] for a in own_hook.received] == ["failure"] and global_hook.received == []
    [alert] = await service.recent_alerts(task_id)
    assert alert.destination == own_hook.url


async def test_the_ssrf_guard_refuses_a_loopback_webhook_once_without_retrying(
    db: Database, global_hook: Webhook, own_hook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(T0)
    service, _ = build_test_scheduler(
        db,
        clock=clock,
        handlers={"fetch": Flaky()},
        alerts=WebhookAlerter(url=global_hook.url),
        own_alert_channels=own_channels(loopback=False),
    )
    task_id = await hourly_task(db)
    await service.set_alert_rules(task_id, AlertRuleChanges(webhook_url=own_hook.url))
    await service.run_now_and_wait("fetch")
    await service.alerting.drain()
    assert own_hook.received == [] and global_hook.received == []
    [refused] = [r for r in caplog.records if "not delivered to the task's webhook" in r.getMessage()]
    assert "127.0.0.1" in refused.getMessage()


async def test_the_maintenance_step_looks_for_late_missing_and_slow_every_30_seconds(
    db: Database, global_hook: Webhook
) -> None:
    clock = FakeClock(T0)
    blocking = BlockingHandler()
    service, loop = build_test_scheduler(
        db, clock=clock, handlers={"fetch": blocking}, alerts=WebhookAlerter(url=global_hook.url)
    )
    task_id = await hourly_task(db)
    await service.set_alert_rules(task_id, AlertRuleChanges(slower_than_s=20))
    await service.run_now("fetch")
    await blocking.started.wait()
    await loop.maintenance_step()  # checks: nothing is slow yet
    clock.advance(25)
    await loop.maintenance_step()  # 25 s later: not looked at again yet
    await service.alerting.drain()
    assert global_hook.received == []
    clock.advance(5)
    await loop.maintenance_step()
    blocking.release()
    await service.wait_idle(within=5)
    await service.alerting.drain()
    assert [a["kind"] for a in global_hook.received] == ["slow"]
