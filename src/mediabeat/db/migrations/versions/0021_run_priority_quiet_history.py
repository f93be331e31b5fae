"""Task priority under the per-node run limit, and a quieter run history.

`scheduler_tasks` gains `priority` (0; higher starts first when more runs are due than a node
may start), `keep_empty_runs` (false: a scheduled run that found nothing to do is counted,
not kept as a row), `last_scheduled_for` (the latest occurrence the schedule claimed: the
claim never runs an occurrence at or before it, so deleting an empty run's row cannot let the
same occurrence run twice) and `last_empty_run_at`. `scheduler_empty_runs` counts the runs
that found nothing to do, per task and hour. Plain add_column: no table is rebuilt on SQLite.

Revision ID: 0021
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mediabeat.db.tables import UTCDateTime

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

TASK_COLUMNS = ("priority", "keep_empty_runs", "last_scheduled_for", "last_empty_run_at")


def upgrade() -> None:
    op.add_column("scheduler_tasks", sa.Column("priority", sa.Integer(), server_default="0", nullable=False))
    op.add_column(
        "scheduler_tasks", sa.Column("keep_empty_runs", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("scheduler_tasks", sa.Column("last_scheduled_for", UTCDateTime(), nullable=True))
    op.add_column("scheduler_tasks", sa.Column("last_empty_run_at", UTCDateTime(), nullable=True))
    op.create_table(
        "scheduler_empty_runs",
        sa.Column(
            "task_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("scheduler_tasks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("hour", UTCDateTime(), primary_key=True),
        sa.Column("runs", sa.BigInteger(), nullable=False),
    )
    # Statistics read the last 24 hours of every task: a range on the hour.
    op.create_index("ix_scheduler_empty_runs_hour", "scheduler_empty_runs", ["hour"])


def downgrade() -> None:
    op.drop_index("ix_scheduler_empty_runs_hour", table_name="scheduler_empty_runs")
    op.drop_table("scheduler_empty_runs")
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild would lose the run-count triggers of 0004.
    for column in TASK_COLUMNS:
        op.execute(f"ALTER TABLE scheduler_tasks DROP COLUMN {column}")
