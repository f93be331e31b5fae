"""Chains on a real database: fan-in once per cycle, on-failure after retries, loops refused by name, two nodes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from mediabeat.clock import FakeClock
from mediabeat.db import migrate
from mediabeat.db.engine import Database, sync_url
from mediabeat.db.stores.chains import ChainStore
from mediabeat.db.stores.run_ends import RunEndStore
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.domain.scheduler import ChainKind, RunEnd, RunFilter, RunRecord, RunStatus
from mediabeat.scheduler.service import NewTask, SchedulerService, TaskChanges, TaskValidationError
from mediabeat.tasks.base import RunContext
from mediabeat.testing import FailingHandler, RecordingHandler, build_test_scheduler
from tests.integration.api_fixtures import ApiEnv, assert_error
from tests.integration.seeds import only_cleanup_seeded

START = datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC)
LATER = START.replace(year=2027)
B = "/api/v1/scheduler"


class Switchable:
    """Succeeds or fails, as the test sets `failing`."""

    def __init__(self) -> None:
        self.failing = False

    async def __call__(self, ctx: RunContext) -> dict[str, int]:
        if self.failing:
            raise RuntimeError("the upstream broke")
        return {"ok": 1}


async def runs_of(service: SchedulerService, name: str) -> list[RunRecord]:
    return list(reversed(await service.list_runs(RunFilter(task=name), limit=100)))


async def run(service: SchedulerService, name: str) -> RunRecord:
    finished = await service.run_now_and_wait(name, triggered_by="test")
    await service.wait_idle(within=10)
    return finished


async def test_a_fan_in_runs_once_when_all_its_upstreams_succeeded_in_the_cycle(db: Database) -> None:
    b = Switchable()
    handlers = {"a": RecordingHandler(), "b": b, "report": RecordingHandler()}
    service, _ = build_test_scheduler(db, clock=FakeClock(START), handlers=handlers)
    for name in ("a", "b"):
        await service.create_task(NewTask(name=name, handler=name, cron="0 0 1 1 *"))
    report = await service.create_task(NewTask(name="report", handler="report", cron="0 0 1 1 *", after=("a", "b")))
    assert (await service.task_chains(report.id)).after == ["a", "b"]

    await run(service, "a")
    assert await runs_of(service, "report") == []  # b has not succeeded yet
    b.failing = True
    await run(service, "b")
    assert await runs_of(service, "report") == []  # b failed: the cycle is not complete
    b.failing = False
    completing = await run(service, "b")
    (first,) = await runs_of(service, "report")  # a (earlier) and b both succeeded in the cycle
    assert (first.trigger, first.status, first.triggered_by) == ("dependency", "succeeded", f"b run {completing.id}")
    assert first.scheduled_for == completing.scheduled_for

    await run(service, "a")
    await run(service, "a")
    assert len(await runs_of(service, "report")) == 1  # a new cycle: b has not succeeded in it
    await run(service, "b")
    assert len(await runs_of(service, "report")) == 2  # once, though a succeeded twice in the cycle


async def test_an_on_failure_task_runs_when_its_upstream_fails_not_when_it_succeeds(db: Database) -> None:
    fetch, notify = Switchable(), RecordingHandler()
    service, _ = build_test_scheduler(db, clock=FakeClock(START), handlers={"fetch": fetch, "notify": notify})
    await service.create_task(NewTask(name="fetch", handler="fetch", cron="0 0 1 1 *"))
    await service.create_task(NewTask(name="notify", handler="notify", cron="0 0 1 1 *", on_failure_of=("fetch",)))
    await run(service, "fetch")
    assert await runs_of(service, "notify") == []
    fetch.failing = True
    failed = await run(service, "fetch")
    (chained,) = await runs_of(service, "notify")
    assert (chained.trigger, chained.status) == ("dependency", "succeeded")
    assert chained.triggered_by == f"fetch run {failed.id} failed"


async def test_an_on_failure_task_waits_until_the_retries_are_used_up(db: Database) -> None:
    await only_cleanup_seeded(db)
    await SchedulerStore(db).update_task(1, {"enabled": False}, START)  # the seeded cleanup task
    clock = FakeClock(START)
    service, loop = build_test_scheduler(
        db, clock=clock, handlers={"flaky": FailingHandler(), "notify": RecordingHandler()}
    )
    await service.create_task(NewTask(name="flaky", handler="flaky", cron="0 * * * *", max_retries=1))
    await service.create_task(NewTask(name="notify", handler="notify", cron="0 0 1 1 *", on_failure_of=("flaky",)))
    clock.set(START.replace(hour=10, minute=0, second=1))
    assert (await loop.step()).started == 1  # the 10:00 run fails; a retry is scheduled
    await service.wait_idle(within=10)
    assert await runs_of(service, "notify") == []
    clock.advance(60)
    assert (await loop.step()).started == 1  # the retry fails too: no retry is left
    await service.wait_idle(within=10)
    flaky = await runs_of(service, "flaky")
    assert [(r.trigger, r.status) for r in flaky] == [("schedule", "failed"), ("retry", "failed")]
    (chained,) = await runs_of(service, "notify")
    assert chained.triggered_by == f"flaky run {flaky[-1].id} failed"


async def test_loops_are_refused_with_the_loop_named_over_success_and_failure_edges(db: Database) -> None:
    service, _ = build_test_scheduler(db, clock=FakeClock(START), handlers={"h": RecordingHandler()})
    a = await service.create_task(NewTask(name="a", handler="h", cron="@daily"))
    await service.create_task(NewTask(name="b", handler="h", cron="@daily", after=("a",)))
    await service.create_task(NewTask(name="c", handler="h", cron="@daily", on_failure_of=("b",)))
    with pytest.raises(TaskValidationError, match="would make a loop: a -> b -\\(on failure\\)-> c -> a") as error:
        await service.update_task(a.id, TaskChanges(after=("c",)))
    assert error.value.field == "after"
    with pytest.raises(TaskValidationError, match="loop: a -> b -\\(on failure\\)-> c -\\(on failure\\)-> a") as error:
        await service.update_task(a.id, TaskChanges(on_failure_of=("c",)))
    assert error.value.field == "on_failure_of"
    assert (await service.task_chains(a.id)).upstream == ()  # nothing was written
    with pytest.raises(TaskValidationError, match="'b' is in after too"):
        await service.update_task(a.id, TaskChanges(after=("b",), on_failure_of=("b",)))
    c = await service.get_task_by_name("c")
    switched = await service.update_task(c.id, TaskChanges(after=("b",), on_failure_of=()))  # one kind for another
    assert (await service.task_chains(switched.id)).after == ["b"]
    with pytest.raises(TaskValidationError, match="'b' is in after already"):
        await service.update_task(c.id, TaskChanges(on_failure_of=("b",)))
    with pytest.raises(TaskValidationError, match="no task named 'nope'"):
        await service.create_task(NewTask(name="d", handler="h", cron="@daily", after=("a", "nope")))
    assert [t.name for t in await service.list_tasks() if t.name == "d"] == []  # refused before it was created


async def test_two_nodes_finishing_the_last_upstreams_at_once_start_the_fan_in_exactly_once(
    database_url: str,
) -> None:
    """Each round, two nodes (two connection pools) record a success of a and of b at the same moment."""
    nodes = [Database(database_url), Database(database_url)]
    try:
        store = SchedulerStore(nodes[0])
        ids = {}
        for name in ("a", "b", "report"):
            task = await store.create_task({"name": name, "handler": name, "cron": "@daily"}, START)
            ids[name] = task.id
        report = await store.get_task(ids["report"])
        assert report is not None
        await ChainStore(nodes[0]).replace(report.id, {ChainKind.SUCCESS: [ids["a"], ids["b"]]}, lambda links: None)

        async def finish(node: Database, upstream: str, round_: int) -> bool:
            chains = ChainStore(node)
            await chains.count_success(ids[upstream], 1000 * round_ + ids[upstream])
            started = await chains.start(
                report,
                kind=ChainKind.SUCCESS,
                upstream_id=ids[upstream],
                upstream_run_id=1000 * round_,
                now=START,
                node_id=f"node-{upstream}",
                triggered_by=upstream,
                scheduled_for=START + timedelta(minutes=round_),
            )
            if started is not None:  # end it, so that the next round's run is not refused for overlap
                await RunEndStore(node).record_run_ends([RunEnd(started.run_id, RunStatus.SUCCEEDED, START)])
            return started is not None

        rounds = 25
        for round_ in range(rounds):
            fired = await asyncio.gather(finish(nodes[0], "a", round_), finish(nodes[1], "b", round_))
            assert sum(fired) == 1, f"round {round_}: {fired}"
        runs = await store.list_runs(RunFilter(task="report"), limit=100)
        assert len(runs) == rounds and {r.status for r in runs} == {"succeeded"}
    finally:
        for node in nodes:
            await node.dispose()


async def test_a_failed_run_starts_its_failure_chain_once_whichever_nodes_report_it(db: Database) -> None:
    store, chains = SchedulerStore(db), ChainStore(db)
    upstream = await store.create_task({"name": "fetch", "handler": "fetch", "cron": "@daily"}, START)
    notify = await store.create_task({"name": "notify", "handler": "notify", "cron": "@daily"}, START)
    await chains.replace(notify.id, {ChainKind.FAILURE: [upstream.id]}, lambda links: None)

    async def report(run_id: int) -> bool:
        started = await chains.start(
            notify,
            kind=ChainKind.FAILURE,
            upstream_id=upstream.id,
            upstream_run_id=run_id,
            now=START,
            node_id=None,
            triggered_by="fetch",
            scheduled_for=START,
        )
        return started is not None

    assert sorted(await asyncio.gather(report(7), report(7))) == [False, True]
    assert not await report(6)  # an older failed run, reported late
    assert sorted(await asyncio.gather(report(8), report(8))) == [False, True]  # skipped: run 1 is still running
    runs = await store.list_runs(RunFilter(task="notify"), limit=10)
    assert [r.status for r in reversed(runs)] == ["running", "skipped"]
    assert "still running (overlap policy forbid)" in (runs[0].error or "")


async def test_chains_are_not_started_for_a_disabled_task(db: Database) -> None:
    service, _ = build_test_scheduler(
        db, clock=FakeClock(START), handlers={"a": RecordingHandler(), "after": RecordingHandler()}
    )
    await service.create_task(NewTask(name="a", handler="a", cron="@daily"))
    after = await service.create_task(NewTask(name="after", handler="after", cron="@daily", after=("a",)))
    await service.set_enabled(after.id, False)
    await run(service, "a")
    assert await runs_of(service, "after") == []


def test_the_migration_turns_each_after_task_id_into_a_success_edge(database_url: str) -> None:
    engine = sa.create_engine(sync_url(database_url))
    with engine.connect() as conn:
        config = migrate.alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0017")
        conn.commit()
        insert = sa.text(
            "INSERT INTO scheduler_tasks (name, handler, cron, after_task_id, created_at, updated_at) "
            "VALUES (:name, 'h', '@daily', :after, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id"
        )
        first = conn.execute(insert, {"name": "first", "after": None}).scalar_one()
        second = conn.execute(insert, {"name": "second", "after": first}).scalar_one()
        conn.commit()
        command.upgrade(config, "head")
        conn.commit()
        edges = conn.execute(sa.text("SELECT upstream_id, downstream_id, kind FROM scheduler_task_edges")).all()
        joins = conn.execute(sa.text("SELECT task_id, cycle FROM scheduler_task_joins")).all()
        columns = {c["name"] for c in sa.inspect(conn).get_columns("scheduler_tasks")}
    engine.dispose()
    assert [tuple(e) for e in edges] == [(first, second, "success")]
    assert [tuple(j) for j in joins] == [(second, 0)]
    assert "after_task_id" not in columns


# -- through the API -----------------------------------------------------------------------------------


async def test_the_api_sets_and_shows_chains_and_keeps_after_task_id(api: ApiEnv) -> None:
    async with api.admin() as client:

        async def create(name: str, **chain: object) -> dict[str, object]:
            body = {"name": name, "handler": "nightly_cleanup", "cron": "@daily", "enabled": False, **chain}
            response = await client.post(f"{B}/tasks", json=body)
            assert response.status_code == 201, response.text
            return dict(response.json())

        a, b = await create("a"), await create("b")
        old = await create("old-style", after="a")  # one name, as before
        assert (old["after"], old["after_task_id"], old["on_failure_of"]) == (["a"], a["id"], [])
        fan_in = await create("fan-in", after=["a", "b"], on_failure_of=["old-style"])
        assert (fan_in["after"], fan_in["on_failure_of"]) == (["a", "b"], ["old-style"])
        assert fan_in["after_task_id"] == min(int(str(a["id"])), int(str(b["id"])))
        shown = (await client.get(f"{B}/tasks/{a['id']}")).json()
        assert shown["downstream"] == [{"name": "fan-in", "kind": "success"}, {"name": "old-style", "kind": "success"}]
        listed = {t["name"]: t for t in (await client.get(f"{B}/tasks")).json()["items"]}
        assert listed["old-style"]["downstream"] == [{"name": "fan-in", "kind": "failure"}]

        loop = await client.patch(f"{B}/tasks/{a['id']}", json={"on_failure_of": ["fan-in"]})
        assert_error(loop, 422)
        assert loop.json()["error"]["details"] == [
            {"field": "on_failure_of", "message": "that would make a loop: a -> fan-in -(on failure)-> a"}
        ]
        cleared = (await client.patch(f"{B}/tasks/{fan_in['id']}", json={"after": "", "on_failure_of": []})).json()
        assert (cleared["after"], cleared["on_failure_of"], cleared["after_task_id"]) == ([], [], None)
        assert_error(await client.patch(f"{B}/tasks/{a['id']}", json={"after": ["no-such-task"]}), 422)


async def test_a_chained_task_whose_handler_this_node_lacks_is_handed_to_a_node_that_has_it(db: Database) -> None:
    clock = FakeClock(START)
    report = RecordingHandler()
    here, _ = build_test_scheduler(db, clock=clock, handlers={"a": RecordingHandler()}, node_id="here")
    there, _ = build_test_scheduler(db, clock=clock, handlers={"report": report}, node_id="there")
    await here.create_task(NewTask(name="a", handler="a", cron="0 0 1 1 *"))
    await there.create_task(NewTask(name="report", handler="report", cron="0 0 1 1 *", after=("a",)))
    await run(here, "a")
    (handed,) = await runs_of(here, "report")
    assert (handed.status, handed.node_id) == ("running", None)
    assert await there.adopt_handed_runs() == 1
    await there.wait_idle(within=10)
    (done,) = await runs_of(there, "report")
    assert (done.status, done.node_id, len(report.calls)) == ("succeeded", "there", 1)
