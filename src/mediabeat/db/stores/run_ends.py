"""Writing how runs ended, many at once: one transaction for every run that ended meanwhile.

A run that found nothing to do and is not to be kept (RunEnd.keep False) is deleted in the
same transaction and counted in scheduler_empty_runs, per task and hour. Its occurrence
stays claimed: the claim advanced the task's next_run_at and last_scheduled_for past it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

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
from mediabeat.db.tables import scheduler_task_runs as runs_t
from mediabeat.db.tables import scheduler_tasks as tasks_t
from mediabeat.domain.scheduler import RunEnd, RunRecord, RunStatus

# A run already reaped (its node looked dead) still gets its true outcome. (An OR, not IN: an
# expanding IN cannot be part of an executemany.)
_ENDABLE = (RunStatus.RUNNING, RunStatus.ABANDONED)


class RunEndStore:
    """Records the ends of runs in batches, on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record_run_ends(self, ends: Sequence[RunEnd]) -> dict[int, RunRecord]:
        """Write these outcomes and their tasks' last status in one transaction; the runs as recorded, by id.

        A run that is gone (its task was deleted) is left out of the answer.
        """
        if not ends:
            return {}
        ids = sorted({end.run_id for end in ends})
        async with self.db.write() as conn:
            started = {
                r.id: (_as_utc(r.started_at), r.task_id)
                for r in await conn.execute(
                    sa.select(runs_t.c.id, runs_t.c.started_at, runs_t.c.task_id).where(runs_t.c.id.in_(ids))
                )
            }
            present = [end for end in ends if end.run_id in started]
            if not present:
                return {}
            await _write_outcomes(conn, present, started)
            await _write_task_status(conn, present, started)
            rows = await conn.execute(_run_query().where(runs_t.c.id.in_(ids)))
            records = {record.id: record for record in map(run_from_row, rows)}
            dropped = [end for end in present if not end.keep and end.run_id in records]
            if dropped:
                await self._count_empty(conn, dropped, started)
        return records

    async def _count_empty(
        self, conn: AsyncConnection, dropped: Sequence[RunEnd], started: dict[int, tuple[datetime, int]]
    ) -> None:
        """Delete the rows of runs that found nothing to do, and count them per task and hour."""
        await conn.execute(runs_t.delete().where(runs_t.c.id.in_(sorted(e.run_id for e in dropped))))
        per_hour: Counter[tuple[int, datetime]] = Counter()
        latest: dict[int, datetime] = {}
        for end in dropped:
            task_id = started[end.run_id][1]
            per_hour[(task_id, end.finished_at.replace(minute=0, second=0, microsecond=0))] += 1
            latest[task_id] = max(latest.get(task_id, end.finished_at), end.finished_at)
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


async def _write_outcomes(
    conn: AsyncConnection, ends: Sequence[RunEnd], started: dict[int, tuple[datetime, int]]
) -> None:
    params: list[dict[str, Any]] = []
    for end in ends:
        started_at = started[end.run_id][0]
        params.append(
            {
                "rid": end.run_id,
                "b_status": end.status,
                "b_finished_at": end.finished_at,
                "b_duration_ms": max(0, int((end.finished_at - started_at).total_seconds() * 1000)),
                "b_error": _clip(end.error, ERROR_LIMIT),
                "b_traceback": _clip(end.traceback, TRACEBACK_LIMIT, keep_end=True),
                "b_result": end.result,
                "b_log": end.log,
            }
        )
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


async def _write_task_status(
    conn: AsyncConnection, ends: Sequence[RunEnd], started: dict[int, tuple[datetime, int]]
) -> None:
    """Each task's last status, from its latest-started run among these (a newer claim's status stands)."""
    latest: dict[int, tuple[datetime, RunStatus]] = {}
    for end in ends:
        started_at, task_id = started[end.run_id]
        if task_id not in latest or latest[task_id][0] <= started_at:
            latest[task_id] = (started_at, end.status)
    await conn.execute(
        tasks_t.update()
        .where(
            tasks_t.c.id == sa.bindparam("tid"),
            sa.or_(tasks_t.c.last_run_at.is_(None), tasks_t.c.last_run_at <= sa.bindparam("started_at")),
        )
        .values(last_status=sa.bindparam("b_status")),
        [{"tid": t, "started_at": s, "b_status": status} for t, (s, status) in sorted(latest.items())],
    )
