"""An index on scheduler_tasks.after_task_id.

Two queries read tasks by the task they are chained after:
- the lookup of a task's dependents, at the end of each successful run;
- PostgreSQL's foreign-key check when a task is deleted.

Without the index each was a scan of every task. Deleting 100,000 tasks did a scan per
row, and took minutes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEX = "ix_scheduler_tasks_after_task_id"


def upgrade() -> None:
    op.create_index(INDEX, "scheduler_tasks", ["after_task_id"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="scheduler_tasks")
