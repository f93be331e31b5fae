"""Queued runs given back to the cluster: a node with free slots takes them, the misfire policy deciding.

A run is given back (its node_id cleared) when the node that claimed it paused, held it longer
than its backlog allows, or died (the reaper). Only a node with a free slot adopts such runs,
and it starts them at once: they have waited already.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mediabeat.db.engine import Database
from mediabeat.db.stores.scheduler import PAUSED, _as_utc, task_from_row
from mediabeat.db.tables import scheduler_task_runs as runs_t
from mediabeat.db.tables import scheduler_tasks as tasks_t
from mediabeat.domain.scheduler import ClaimedRuns, RunStatus, TaskRecord
from mediabeat.schedule import plan_given_back

_GIVEN_BACK = (runs_t.c.status == RunStatus.QUEUED, runs_t.c.node_id.is_(None))


class QueuedRunStore:
    """Adopts queued runs that no node holds, on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def adopt_given_back(self, *, node_id: str, now: datetime, limit: int, grace: timedelta) -> list[ClaimedRuns]:
        """Take up to `limit` given-back runs (highest priority, then the earliest due) and start them now.

        Nothing is taken while the scheduler is paused. A run that waited past the misfire grace
        follows its task's misfire policy (schedule.plan_given_back): the runs it does not run end
        `skipped`, and so do the runs of a task disabled meanwhile. A read comes first, so that a
        loop step with nothing given back takes no write lock.
        """
        async with self.db.read() as conn:
            if (await conn.execute(sa.select(runs_t.c.id).where(*_GIVEN_BACK).limit(1))).first() is None:
                return []
        pick = (
            sa.select(runs_t.c.id)
            .select_from(runs_t.join(tasks_t, runs_t.c.task_id == tasks_t.c.id))
            .where(*_GIVEN_BACK, ~PAUSED)
            .order_by(tasks_t.c.priority.desc(), runs_t.c.scheduled_for, runs_t.c.id)
            .limit(limit)
        )
        if self.db.is_postgres:
            pick = pick.with_for_update(of=runs_t, skip_locked=True)
        adopt = (
            runs_t.update()
            .where(runs_t.c.id.in_(pick.scalar_subquery()), *_GIVEN_BACK)
            .values(node_id=node_id, heartbeat_at=now)
            .returning(runs_t.c.id, runs_t.c.task_id, runs_t.c.scheduled_for)
        )
        async with self.db.write() as conn:
            adopted = (await conn.execute(adopt)).all()
            if not adopted:
                return []
            rows = await conn.execute(sa.select(tasks_t).where(tasks_t.c.id.in_({r.task_id for r in adopted})))
            tasks = {task.id: task for task in map(task_from_row, rows)}
            by_task: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
            for row in adopted:
                by_task[row.task_id].append((_as_utc(row.scheduled_for), row.id))
            claims, skipped = _decide(tasks, by_task, now=now, grace=grace)
            await _write(conn, claims, skipped, now=now)
        return claims


def _decide(
    tasks: dict[int, TaskRecord],
    by_task: dict[int, list[tuple[datetime, int]]],
    *,
    now: datetime,
    grace: timedelta,
) -> tuple[list[ClaimedRuns], dict[int, str]]:
    """The runs to start now, per task, and the runs to skip with the reason."""
    claims: list[ClaimedRuns] = []
    skipped: dict[int, str] = {}
    for task_id, pairs in sorted(by_task.items()):
        task = tasks[task_id]
        ids = dict(pairs)
        if not task.enabled:
            skipped.update({run_id: "skipped: the task was disabled before the run started" for run_id in ids.values()})
            continue
        run, skip = plan_given_back(list(ids), now=now, misfire=task.misfire_policy, grace=grace)
        reason = f"skipped: the occurrence waited past the misfire grace (misfire policy {task.misfire_policy})"
        skipped.update({ids[when]: reason for when in skip})
        if run:
            claims.append(ClaimedRuns(task=task, run_ids=[ids[when] for when in run], scheduled_for=run))
    claims.sort(key=lambda c: (-c.task.priority, c.scheduled_for[0], c.run_ids[0]))
    return claims, skipped


async def _write(conn: AsyncConnection, claims: list[ClaimedRuns], skipped: dict[int, str], *, now: datetime) -> None:
    if skipped:
        await conn.execute(
            runs_t.update()
            .where(runs_t.c.id == sa.bindparam("rid"))
            .values(status=RunStatus.SKIPPED, finished_at=now, duration_ms=0, error=sa.bindparam("reason")),
            [{"rid": run_id, "reason": reason} for run_id, reason in sorted(skipped.items())],
        )
    started = [claim.run_ids[0] for claim in claims]
    if started:
        await conn.execute(
            runs_t.update()
            .where(runs_t.c.id.in_(started))
            .values(status=RunStatus.RUNNING, started_at=now, heartbeat_at=now)
        )
        await conn.execute(
            tasks_t.update()
            .where(tasks_t.c.id.in_([claim.task.id for claim in claims]))
            .values(last_run_at=now, last_status=RunStatus.RUNNING)
        )
