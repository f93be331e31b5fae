"""Run counts per task and status, kept by triggers, so statistics need not count the whole run history.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BACKFILL = """
INSERT INTO scheduler_run_counts (task_id, status, runs)
SELECT task_id, status, COUNT(*) FROM scheduler_task_runs GROUP BY task_id, status
"""

# One upsert adds `delta` to a (task, status) pair; the triggers call it for the new and the old row.
SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER scheduler_run_counts_insert AFTER INSERT ON scheduler_task_runs
    BEGIN
        INSERT INTO scheduler_run_counts (task_id, status, runs) VALUES (NEW.task_id, NEW.status, 1)
        ON CONFLICT (task_id, status) DO UPDATE SET runs = runs + 1;
    END
    """,
    """
    CREATE TRIGGER scheduler_run_counts_update AFTER UPDATE OF status ON scheduler_task_runs
    WHEN OLD.status IS NOT NEW.status
    BEGIN
        UPDATE scheduler_run_counts SET runs = runs - 1 WHERE task_id = OLD.task_id AND status = OLD.status;
        INSERT INTO scheduler_run_counts (task_id, status, runs) VALUES (NEW.task_id, NEW.status, 1)
        ON CONFLICT (task_id, status) DO UPDATE SET runs = runs + 1;
    END
    """,
    """
    CREATE TRIGGER scheduler_run_counts_delete AFTER DELETE ON scheduler_task_runs
    BEGIN
        UPDATE scheduler_run_counts SET runs = runs - 1 WHERE task_id = OLD.task_id AND status = OLD.status;
    END
    """,
]

# On PostgreSQL the triggers run once per statement over its transition tables: a row-level trigger
# would update the same few counter rows once per run, and a bulk insert or a retention delete of a
# million runs in one transaction would leave a million dead versions of them to walk through.
POSTGRES_TRIGGERS = [
    """
    CREATE FUNCTION scheduler_run_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
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
    """,
    """
    CREATE TRIGGER scheduler_run_counts_insert AFTER INSERT ON scheduler_task_runs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION scheduler_run_counts_apply()
    """,
    """
    CREATE TRIGGER scheduler_run_counts_update AFTER UPDATE ON scheduler_task_runs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION scheduler_run_counts_apply()
    """,
    """
    CREATE TRIGGER scheduler_run_counts_delete AFTER DELETE ON scheduler_task_runs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION scheduler_run_counts_apply()
    """,
]


def upgrade() -> None:
    op.create_table(
        "scheduler_run_counts",
        sa.Column(
            "task_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("scheduler_tasks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("runs", sa.BigInteger(), nullable=False),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        # Runs recorded while this migration runs must not slip between the backfill and the triggers.
        op.execute("LOCK TABLE scheduler_task_runs IN SHARE ROW EXCLUSIVE MODE")
    for statement in POSTGRES_TRIGGERS if postgres else SQLITE_TRIGGERS:
        op.execute(statement)
    op.execute(BACKFILL)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in ("insert", "update", "delete"):
        op.execute(
            f"DROP TRIGGER IF EXISTS scheduler_run_counts_{name}" + (" ON scheduler_task_runs" if postgres else "")
        )
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS scheduler_run_counts_apply()")
    op.drop_table("scheduler_run_counts")
