"""Queued runs: a scheduled run a node claimed and has not started yet.

A node claims every due occurrence it may hold in one transaction (its free slots plus its
backlog, MEDIABEAT_RUN_BACKLOG) and starts them as its slots free. The occurrences it has not
started yet are run rows with status `queued`: the unique (task_id, scheduled_for) index still
decides which node owns an occurrence, and a node that dies leaves rows the reaper can give
back to the cluster instead of losing them. The status CHECK accepts `queued`.

On SQLite the CHECK is widened in place, as in 0016 (rebuilding the table would drop the
run-count triggers of 0004 and the partial indexes). Downgrading turns queued rows into
abandoned ones first.

Revision ID: 0026
Revises: 0023
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0026"
down_revision = "0023"
branch_labels = None
depends_on = None

OLD_STATUSES = "'running', 'succeeded', 'failed', 'timed_out', 'skipped', 'abandoned', 'cancelled'"
NEW_STATUSES = OLD_STATUSES + ", 'queued'"


def _set_check(old: str, new: str) -> None:
    bind = op.get_bind()
    name = "ck_scheduler_task_runs_status"
    if bind.dialect.name == "postgresql":
        op.execute(f"ALTER TABLE scheduler_task_runs DROP CONSTRAINT {name}")
        op.execute(f"ALTER TABLE scheduler_task_runs ADD CONSTRAINT {name} CHECK (status IN ({new}))")
        return
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'scheduler_task_runs'",
        (f"status IN ({old})", f"status IN ({new})"),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    _set_check(OLD_STATUSES, NEW_STATUSES)


def downgrade() -> None:
    op.execute(
        "UPDATE scheduler_task_runs SET status = 'abandoned', "
        "error = 'queued when the database was downgraded' WHERE status = 'queued'"
    )
    _set_check(NEW_STATUSES, OLD_STATUSES)
