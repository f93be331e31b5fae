"""The write-behind of run ends: ends of one moment go in one batch, later ones in the next, and an outage
is retried until given up (then every run of the batch is left to the reaper)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from mediabeat.domain.scheduler import RunEnd, RunRecord, RunStart, RunStatus, Trigger
from mediabeat.scheduler.run_ends import RunEndWriter

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def record(run_id: int, task_id: int) -> RunRecord:
    values: dict[str, Any] = dict.fromkeys(RunRecord.__slots__)
    values.update(
        id=run_id,
        task_id=task_id,
        task=f"task-{task_id}",
        trigger=Trigger.SCHEDULE,
        scheduled_for=NOW,
        started_at=NOW,
        status=RunStatus.SUCCEEDED,
        missed=0,
        attempt=0,
    )
    return RunRecord(**values)


class FakeEndStore:
    """Records each batch; fails the first `failures` writes as a database outage would."""

    def __init__(self, failures: int = 0) -> None:
        self.batches: list[list[int]] = []
        self.starts: list[list[int]] = []
        self.log: list[str] = []
        self.failures = failures
        self.gate = asyncio.Event()
        self.gate.set()

    async def record_run_ends(self, ends: list[RunEnd]) -> tuple[dict[int, RunRecord], set[int]]:
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise sa.exc.OperationalError("UPDATE", {}, Exception("database is away"))
        self.batches.append([end.run_id for end in ends])
        self.log.append("ends")
        return {end.run_id: record(end.run_id, end.run_id % 2) for end in ends}, {1}

    async def with_alert_rules(self, task_ids: set[int]) -> set[int]:
        return {1} & task_ids

    async def record_run_starts(self, starts: list[RunStart]) -> None:
        await asyncio.sleep(0.01)
        self.starts.append([start.run_id for start in starts])
        self.log.append("starts")


def end(run_id: int) -> RunEnd:
    return RunEnd(run_id=run_id, status=RunStatus.SUCCEEDED, finished_at=NOW)


async def test_ends_of_one_moment_share_a_batch_and_later_ends_take_the_next() -> None:
    store = FakeEndStore()
    writer = RunEndWriter(store)  # type: ignore[arg-type]
    store.gate.clear()
    first = [writer.add(end(i)) for i in range(1, 33)]
    await asyncio.sleep(0.01)  # the first batch is being written...
    later = [writer.add(end(i)) for i in range(33, 41)]  # ...while these arrive
    store.gate.set()
    recorded = await asyncio.gather(*first, *later)
    assert store.batches == [list(range(1, 33)), list(range(33, 41))]
    assert all(r is not None for r in recorded)
    assert [r.chained for r in recorded[:2] if r is not None] == [True, False]  # task 1 has a chain, task 0 not
    await writer.flush()


async def test_an_outage_is_retried_and_then_given_up_to_the_reaper() -> None:
    store = FakeEndStore(failures=2)
    writer = RunEndWriter(store, retry_seconds=(0, 0))  # type: ignore[arg-type]
    assert (await writer.add(end(7))) is not None  # two failures, then the third try commits
    assert store.batches == [[7]]
    store.failures = 5
    assert await asyncio.wait_for(writer.add(end(8)), timeout=5) is None  # given up: still running, reaped later
    await writer.flush()


async def test_starts_of_one_moment_share_a_batch_and_are_written_before_any_end() -> None:
    store = FakeEndStore()
    writer = RunEndWriter(store)  # type: ignore[arg-type]
    for run_id in range(1, 11):
        writer.starts.add(RunStart(run_id, 1, NOW))
    recorded = await writer.add(end(1))
    assert store.starts == [list(range(1, 11))]
    assert store.log == ["starts", "ends"]  # an end never precedes its start
    assert recorded is not None and recorded.has_rules is (recorded.run.task_id == 1)
