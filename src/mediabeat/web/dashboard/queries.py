"""The few reads only the dashboard needs: recent outcomes per task, on the (task_id, started_at) index."""

from __future__ import annotations

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.tables import scheduler_task_runs as runs_t
from mediabeat.web.dashboard.view import RunPoint


async def recent_runs(db: Database, task_ids: list[int], *, per_task: int) -> dict[int, list[RunPoint]]:
    """The newest `per_task` runs of each task, oldest first.

    One statement: a UNION ALL of one index-ordered, limited read per task, so a long history is never scanned
    and the page pays one database round trip however many tasks there are.
    """
    found: dict[int, list[RunPoint]] = {task_id: [] for task_id in task_ids}
    if not task_ids:
        return found
    columns = (runs_t.c.task_id, runs_t.c.id, runs_t.c.status, runs_t.c.started_at, runs_t.c.duration_ms)
    parts = [
        sa.select(
            sa.select(*columns)
            .where(runs_t.c.task_id == task_id)
            .order_by(runs_t.c.started_at.desc(), runs_t.c.id.desc())
            .limit(per_task)
            .subquery()
        )
        for task_id in task_ids
    ]
    async with db.read() as conn:
        rows = (await conn.execute(sa.union_all(*parts))).all()
    for row in rows:
        found[row.task_id].append(RunPoint(row.id, row.status, row.started_at, row.duration_ms))
    for points in found.values():
        points.sort(key=lambda p: (p.started_at, p.id))
    return found
