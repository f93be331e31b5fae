"""Writing how runs ended, many at once: one transaction for every run that ended meanwhile.

A run that found nothing to do and is not to be kept (RunEnd.keep False) is deleted in the
same transaction and counted in scheduler_empty_runs, per task and hour. Its occurrence
stays claimed: the claim advanced the task's next_run_at and last_scheduled_for past it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from mediabeat.db.engine import Database
from mediabeat.db.stores.scheduler import (
    ERROR_LIMIT,
    TRACEBACK_LIMIT,
    _as_utc,
    _clip,
    _run_query,
    run_from_row,
)
from mediabeat.db.tables import scheduler_empty_runs as empty_t
from mediabeat.db.tables import scheduler_task_edges as edges_t
from mediabeat.db.tables import scheduler_task_runs as runs_t
from mediabeat.db.tables import scheduler_tasks as tasks_t
from mediabeat.db.tables import task_alert_rules as rules_t
from mediabeat.domain.scheduler import RunEnd, RunRecord, RunStart, RunStatus

# A run already reaped (its node looked dead) still gets its true outcome; a queued run whose start is
# still being written (or was cancelled before it started) ends too. (An OR, not IN: an
# expanding IN cannot be part of an executemany.)
_ENDABLE = (RunStatus.RUNNING, RunStatus.ABANDONED, RunStatus.QUEUED)


class RunEndStore:
    """Records the ends of runs in batches, on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record_run_ends(self, ends: Sequence[RunEnd]) -> tuple[dict[int, RunRecord], set[int]]:
        """Write these outcomes and their tasks' last status in one transaction.

        Returns the runs as recorded, by id (a run that is gone, its task deleted, is left out), and
        which of their tasks have tasks chained after them (on success or failure): read in the same
        transaction, one statement for the batch instead of one per ended run.
        """
        if not ends:
            return {}, set()
        ids = sorted({end.run_id for end in ends})
        async with self.db.write() as conn:
            before = {r.id: r for r in map(run_from_row, await conn.execute(_run_query().where(runs_t.c.id.in_(ids))))}
            present = [end for end in ends if end.run_id in before and before[end.run_id].status in _ENDABLE]
            if not present:
                return before, set()
            records = {**before, **{end.run_id: _ended(before[end.run_id], end) for end in present}}
            await _write_outcomes(conn, [records[end.run_id] for end in present], present)
            await _write_task_status(conn, [records[end.run_id] for end in present])
            dropped = [records[end.run_id] for end in present if not end.keep]
            if dropped:
                await self._count_empty(conn, dropped)
            chained = await _chained(conn, {r.task_id for r in records.values()})
        return records, chained

    async def with_alert_rules(self, task_ids: set[int]) -> set[int]:
        """Those of `task_ids` that have alert rules of their own: one read for a batch of ends."""
        if not task_ids:
            return set()
        async with self.db.read() as conn:
            rows = await conn.execute(sa.select(rules_t.c.task_id).where(rules_t.c.task_id.in_(sorted(task_ids))))
            return {int(task_id) for (task_id,) in rows}

    async def record_run_starts(self, starts: Sequence[RunStart]) -> None:
        """Write when these claimed runs really started (queued ones become running), in one transaction."""
        if not starts:
            return
        async with self.db.write() as conn:
            await conn.execute(
                runs_t.update()
                .where(
                    runs_t.c.id == sa.bindparam("rid"),
                    sa.or_(runs_t.c.status == RunStatus.QUEUED, runs_t.c.status == RunStatus.RUNNING),
                )
                .values(status=RunStatus.RUNNING, started_at=sa.bindparam("at"), heartbeat_at=sa.bindparam("at")),
                [{"rid": start.run_id, "at": start.at} for start in starts],
            )
            latest: dict[int, datetime] = {}
            for start in starts:
                latest[start.task_id] = max(latest.get(start.task_id, start.at), start.at)
            await conn.execute(
                tasks_t.update()
                .where(tasks_t.c.id == sa.bindparam("tid"), tasks_t.c.last_status == RunStatus.QUEUED)
                .values(last_status=RunStatus.RUNNING, last_run_at=sa.bindparam("at")),
                [{"tid": t, "at": at} for t, at in sorted(latest.items())],
            )

    async def _count_empty(self, conn: AsyncConnection, dropped: Sequence[RunRecord]) -> None:
        """Delete the rows of runs that found nothing to do, and count them per task and hour."""
        await conn.execute(runs_t.delete().where(runs_t.c.id.in_(sorted(run.id for run in dropped))))
        per_hour: Counter[tuple[int, datetime]] = Counter()
        latest: dict[int, datetime] = {}
        for run in dropped:
            assert run.finished_at is not None  # _ended set it
            per_hour[(run.task_id, run.finished_at.replace(minute=0, second=0, microsecond=0))] += 1
            latest[run.task_id] = max(latest.get(run.task_id, run.finished_at), run.finished_at)
        insert = (postgresql.insert if self.db.is_postgres else sqlite.insert)(empty_t)
        statement = insert.on_conflict_do_update(
            index_elements=["task_id", "hour"], set_={"runs": empty_t.c.runs + insert.excluded.runs}
        )
        await conn.execute(statement, [{"task_id": t, "hour": h, "runs": n} for (t, h), n in sorted(per_hour.items())])
        await conn.execute(
            tasks_t.update()
            .where(
                tasks_t.c.id == sa.bindparam("tid"),
                sa.or_(tasks_t.c.last_empty_run_at.is_(None), tasks_t.c.last_empty_run_at < sa.bindparam("newer")),
            )
            .values(last_empty_run_at=sa.bindparam("at")),
            [{"tid": t, "at": at, "newer": at} for t, at in sorted(latest.items())],
        )


async def _chained(conn: AsyncConnection, task_ids: set[int]) -> set[int]:
    """Those of `task_ids` that another task is chained after, on success or on failure (scheduler_task_edges)."""
    if not task_ids:
        return set()
    rows = await conn.execute(
        sa.select(edges_t.c.upstream_id).where(edges_t.c.upstream_id.in_(sorted(task_ids))).distinct()
    )
    return {int(task_id) for (task_id,) in rows}


def _ended(run: RunRecord, end: RunEnd) -> RunRecord:
    """The run as it is once `end` is written (the record is built here, not read back: a round trip less)."""
    started_at = _as_utc(run.started_at)
    return dataclasses.replace(
        run,
        status=end.status,
        finished_at=end.finished_at,
        duration_ms=max(0, int((end.finished_at - started_at).total_seconds() * 1000)),
        error=_clip(end.error, ERROR_LIMIT),
        traceback=_clip(end.traceback, TRACEBACK_LIMIT, keep_end=True),
        result=end.result,
        log=end.log,
    )


async def _write_outcomes(conn: AsyncConnection, ended: Sequence[RunRecord], ends: Sequence[RunEnd]) -> None:
    params = [
        {
            "rid": run.id,
            "b_status": run.status,
            "b_finished_at": run.finished_at,
            "b_duration_ms": run.duration_ms,
            "b_error": run.error,
            "b_traceback": run.traceback,
            "b_result": run.result,
            "b_log": run.log,
        }
        for run, end in zip(ended, ends, strict=True)
        if end.keep  # a run whose row is deleted is not updated first
    ]
    if not params:
        return
    await conn.execute(
        runs_t.update()
        .where(runs_t.c.id == sa.bindparam("rid"), sa.or_(*(runs_t.c.status == status for status in _ENDABLE)))
        .values(
            status=sa.bindparam("b_status"),
            finished_at=sa.bindparam("b_finished_at"),
            duration_ms=sa.bindparam("b_duration_ms"),
            error=sa.bindparam("b_error"),
            traceback=sa.bindparam("b_traceback"),
            result=sa.bindparam("b_result", type_=runs_t.c.result.type),
            log=sa.bindparam("b_log"),
        ),
        params,
    )


async def _write_task_status(conn: AsyncConnection, ended: Sequence[RunRecord]) -> None:
    """Each task's last status, from its latest-started run among these (a newer claim's status stands)."""
    latest: dict[int, tuple[datetime, RunStatus]] = {}
    for run in ended:
        started_at = _as_utc(run.started_at)
        if run.task_id not in latest or latest[run.task_id][0] <= started_at:
            latest[run.task_id] = (started_at, run.status)
    await conn.execute(
        tasks_t.update()
        .where(
            tasks_t.c.id == sa.bindparam("tid"),
            sa.or_(tasks_t.c.last_run_at.is_(None), tasks_t.c.last_run_at <= sa.bindparam("started_at")),
        )
        .values(last_status=sa.bindparam("b_status")),
        [{"tid": t, "started_at": s, "b_status": status} for t, (s, status) in sorted(latest.items())],
    )
