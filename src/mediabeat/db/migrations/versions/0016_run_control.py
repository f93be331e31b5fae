"""Run control: cancel a run, pause the whole scheduler.

`scheduler_task_runs` gains `cancel_requested_at` and `cancelled_by` (the node executing a
run notices the request at its next heartbeat and cancels the handler), and its status
CHECK accepts `cancelled`. `scheduler_pause` is the cluster-wide pause switch: one row,
not paused.

On SQLite the CHECK is widened in place (the documented writable_schema procedure for
loosening a constraint): rebuilding the table would drop the run-count triggers of 0004
and the partial indexes with it. Every existing row satisfies the wider CHECK.

Revision ID: 0016
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mediabeat.db.tables import UTCDateTime

revision = "0016"
down_revision = "0010"
branch_labels = None
depends_on = None

OLD_STATUSES = "'running', 'succeeded', 'failed', 'timed_out', 'skipped', 'abandoned'"
NEW_STATUSES = OLD_STATUSES + ", 'cancelled'"
CHECK_NAME = "ck_scheduler_task_runs_status"


def _set_status_check(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"ALTER TABLE scheduler_task_runs DROP CONSTRAINT {CHECK_NAME}")
        op.execute(f"ALTER TABLE scheduler_task_runs ADD CONSTRAINT {CHECK_NAME} CHECK (status IN ({new}))")
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
    op.add_column("scheduler_task_runs", sa.Column("cancel_requested_at", UTCDateTime(), nullable=True))
    op.add_column("scheduler_task_runs", sa.Column("cancelled_by", sa.String(320), nullable=True))
    _set_status_check(OLD_STATUSES, NEW_STATUSES)
    pause = op.create_table(
        "scheduler_pause",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("changed_by", sa.String(320), nullable=True),
        sa.Column("changed_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_scheduler_pause_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_pause")),
    )
    op.bulk_insert(pause, [{"id": 1, "paused": False}])


def downgrade() -> None:
    op.drop_table("scheduler_pause")
    op.execute("UPDATE scheduler_task_runs SET status = 'failed' WHERE status = 'cancelled'")
    _set_status_check(NEW_STATUSES, OLD_STATUSES)
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild would lose the triggers of 0004.
    op.execute("ALTER TABLE scheduler_task_runs DROP COLUMN cancelled_by")
    op.execute("ALTER TABLE scheduler_task_runs DROP COLUMN cancel_requested_at")
