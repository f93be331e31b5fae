"""The few reads only the dashboard needs: recent outcomes per task, on the (task_id, started_at) index."""

from __future__ import annotations

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.tables import scheduler_task_runs as runs_t
from mediabeat.web.dashboard.view import RunPoint


async def recent_runs(db: Database, task_ids: list[int], *, per_task: int) -> dict[int, list[RunPoint]]:
    """The newest `per_task` runs of each task, oldest first (one indexed query per task, no full scans)."""
    found: dict[int, list[RunPoint]] = {}
    columns = (runs_t.c.id, runs_t.c.status, runs_t.c.started_at, runs_t.c.duration_ms)
    async with db.read() as conn:
        for task_id in task_ids:
            query = (
                sa.select(*columns)
                .where(runs_t.c.task_id == task_id)
                .order_by(runs_t.c.started_at.desc(), runs_t.c.id.desc())
                .limit(per_task)
            )
            rows = (await conn.execute(query)).all()
            found[task_id] = [RunPoint(r.id, r.status, r.started_at, r.duration_ms) for r in reversed(rows)]
    return found
