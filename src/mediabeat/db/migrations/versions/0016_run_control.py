"""Run control: cancel a run, pause the whole scheduler, retry failed runs.

`scheduler_task_runs` gains `cancel_requested_at` and `cancelled_by` (the node executing a
run notices the request at its next heartbeat and cancels the handler), and its status
CHECK accepts `cancelled`. `scheduler_pause` is the cluster-wide pause switch: one row,
not paused. Retries: tasks gain `max_retries` (0), `retry_backoff_s` (60),
`retry_backoff_max_s` (3600) and the pending retry (`retry_at`, `retry_run_id`,
`retry_attempt`); runs gain `retry_of` and `attempt`, and the trigger CHECK accepts `retry`.
Per-run logs: runs gain `log`, deleted with the run by retention.

On SQLite the CHECK is widened in place (the documented writable_schema procedure for
loosening a constraint): rebuilding the table would drop the run-count triggers of 0004
and the partial indexes with it. Every existing row satisfies the wider CHECK.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mediabeat.db.tables import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

OLD_STATUSES = "'running', 'succeeded', 'failed', 'timed_out', 'skipped', 'abandoned'"
NEW_STATUSES = OLD_STATUSES + ", 'cancelled'"
OLD_TRIGGERS = "'schedule', 'manual', 'dependency'"
NEW_TRIGGERS = OLD_TRIGGERS + ", 'retry'"
TASK_COLUMNS = ("max_retries", "retry_backoff_s", "retry_backoff_max_s", "retry_at", "retry_run_id", "retry_attempt")


def _set_check(column: str, old: str, new: str) -> None:
    bind = op.get_bind()
    name = f"ck_scheduler_task_runs_{column}"
    if bind.dialect.name == "postgresql":
        op.execute(f"ALTER TABLE scheduler_task_runs DROP CONSTRAINT {name}")
        op.execute(f'ALTER TABLE scheduler_task_runs ADD CONSTRAINT {name} CHECK ("{column}" IN ({new}))')
        return
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'scheduler_task_runs'",
        (f"{column} IN ({old})", f"{column} IN ({new})"),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def _big_int() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("scheduler_task_runs", sa.Column("cancel_requested_at", UTCDateTime(), nullable=True))
    op.add_column("scheduler_task_runs", sa.Column("cancelled_by", sa.String(320), nullable=True))
    op.add_column("scheduler_task_runs", sa.Column("retry_of", _big_int(), nullable=True))
    op.add_column("scheduler_task_runs", sa.Column("attempt", sa.Integer(), server_default="0", nullable=False))
    op.add_column("scheduler_task_runs", sa.Column("log", sa.Text(), nullable=True))
    _set_check("status", OLD_STATUSES, NEW_STATUSES)
    _set_check("trigger", OLD_TRIGGERS, NEW_TRIGGERS)
    op.add_column("scheduler_tasks", sa.Column("max_retries", sa.Integer(), server_default="0", nullable=False))
    op.add_column("scheduler_tasks", sa.Column("retry_backoff_s", sa.Integer(), server_default="60", nullable=False))
    op.add_column(
        "scheduler_tasks", sa.Column("retry_backoff_max_s", sa.Integer(), server_default="3600", nullable=False)
    )
    op.add_column("scheduler_tasks", sa.Column("retry_at", UTCDateTime(), nullable=True))
    op.add_column("scheduler_tasks", sa.Column("retry_run_id", _big_int(), nullable=True))
    op.add_column("scheduler_tasks", sa.Column("retry_attempt", sa.Integer(), server_default="0", nullable=False))
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
    op.execute("UPDATE scheduler_task_runs SET \"trigger\" = 'manual' WHERE \"trigger\" = 'retry'")
    _set_check("status", NEW_STATUSES, OLD_STATUSES)
    _set_check("trigger", NEW_TRIGGERS, OLD_TRIGGERS)
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild would lose the triggers of 0004.
    for column in TASK_COLUMNS:
        op.execute(f"ALTER TABLE scheduler_tasks DROP COLUMN {column}")
    op.execute("ALTER TABLE scheduler_task_runs DROP COLUMN attempt")
    op.execute("ALTER TABLE scheduler_task_runs DROP COLUMN log")
    op.execute("ALTER TABLE scheduler_task_runs DROP COLUMN retry_of")
    op.execute("ALTER TABLE scheduler_task_runs DROP COLUMN cancelled_by")
    op.execute("ALTER TABLE scheduler_task_runs DROP COLUMN cancel_requested_at")
