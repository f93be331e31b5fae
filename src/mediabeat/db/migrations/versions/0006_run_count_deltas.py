"""Run counts on PostgreSQL: the triggers append deltas, and the maintenance leader folds them in.

The upsert triggers of 0004 locked one counter row per (task, status) until commit. A claim
holds its task's row and then inserts a run (locking the `running` counter), while the end
of a run updates the counters first and then the task: under load, two workers deadlocked.
Now every statement appends its deltas to scheduler_run_count_deltas, which locks nothing
another transaction holds, and StatsStore.fold_run_counts() moves them into
scheduler_run_counts. Readers add both tables, so the totals are exact at every moment.
The deltas have no foreign key: deleting a task deletes its runs, and the deltas that
delete appends refer to a task that is already gone; the fold and the readers skip them.
SQLite has one writer and keeps 0004's upsert triggers; its delta table stays empty.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

APPEND_DELTAS = """
CREATE OR REPLACE FUNCTION scheduler_run_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO scheduler_run_count_deltas (task_id, status, runs)
        SELECT task_id, status, COUNT(*) FROM new_rows GROUP BY task_id, status;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO scheduler_run_count_deltas (task_id, status, runs)
        SELECT task_id, status, -COUNT(*) FROM old_rows GROUP BY task_id, status;
    ELSE
        INSERT INTO scheduler_run_count_deltas (task_id, status, runs)
        SELECT task_id, status, SUM(n) FROM (
            SELECT task_id, status, 1 AS n FROM new_rows
            UNION ALL
            SELECT task_id, status, -1 AS n FROM old_rows
        ) AS changes
        GROUP BY task_id, status
        HAVING SUM(n) <> 0;
    END IF;
    RETURN NULL;
END
$$
"""

# The same statement as StatsStore.fold_run_counts(), for the downgrade.
FOLD = """
WITH folded AS (DELETE FROM scheduler_run_count_deltas RETURNING task_id, status, runs)
INSERT INTO scheduler_run_counts (task_id, status, runs)
SELECT task_id, status, SUM(runs) FROM folded
WHERE task_id IN (SELECT id FROM scheduler_tasks)
GROUP BY task_id, status
ORDER BY task_id, status
ON CONFLICT (task_id, status) DO UPDATE SET runs = scheduler_run_counts.runs + EXCLUDED.runs
"""

UPSERT_COUNTS = """
CREATE OR REPLACE FUNCTION scheduler_run_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO scheduler_run_counts (task_id, status, runs)
        SELECT task_id, status, COUNT(*) FROM new_rows GROUP BY task_id, status
        ON CONFLICT (task_id, status) DO UPDATE SET runs = scheduler_run_counts.runs + EXCLUDED.runs;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE scheduler_run_counts AS c SET runs = c.runs - d.n
        FROM (SELECT task_id, status, COUNT(*) AS n FROM old_rows GROUP BY task_id, status) AS d
        WHERE c.task_id = d.task_id AND c.status = d.status;
    ELSE
        INSERT INTO scheduler_run_counts (task_id, status, runs)
        SELECT task_id, status, SUM(n) FROM (
            SELECT task_id, status, 1 AS n FROM new_rows
            UNION ALL
            SELECT task_id, status, -1 AS n FROM old_rows
        ) AS changes
        GROUP BY task_id, status
        HAVING SUM(n) <> 0
        ON CONFLICT (task_id, status) DO UPDATE SET runs = scheduler_run_counts.runs + EXCLUDED.runs;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "scheduler_run_count_deltas",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_DELTAS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("LOCK TABLE scheduler_task_runs IN SHARE ROW EXCLUSIVE MODE")
        op.execute(UPSERT_COUNTS)
        op.execute(FOLD)
    op.drop_table("scheduler_run_count_deltas")
