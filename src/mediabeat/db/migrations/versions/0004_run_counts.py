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

POSTGRES_TRIGGERS = [
    """
    CREATE FUNCTION scheduler_run_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            UPDATE scheduler_run_counts SET runs = runs - 1 WHERE task_id = OLD.task_id AND status = OLD.status;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO scheduler_run_counts (task_id, status, runs) VALUES (NEW.task_id, NEW.status, 1)
            ON CONFLICT (task_id, status) DO UPDATE SET runs = scheduler_run_counts.runs + 1;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER scheduler_run_counts_insert_delete AFTER INSERT OR DELETE ON scheduler_task_runs
    FOR EACH ROW EXECUTE FUNCTION scheduler_run_counts_apply()
    """,
    """
    CREATE TRIGGER scheduler_run_counts_update AFTER UPDATE OF status ON scheduler_task_runs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION scheduler_run_counts_apply()
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
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS scheduler_run_counts_insert_delete ON scheduler_task_runs")
        op.execute("DROP TRIGGER IF EXISTS scheduler_run_counts_update ON scheduler_task_runs")
        op.execute("DROP FUNCTION IF EXISTS scheduler_run_counts_apply()")
    else:
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS scheduler_run_counts_{name}")
    op.drop_table("scheduler_run_counts")
