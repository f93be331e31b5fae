"""Chains as edges: fan-in (after all of several tasks) and on-failure chains.

`scheduler_task_edges` (downstream_id, upstream_id, kind success|failure) replaces
`scheduler_tasks.after_task_id`: each existing chain becomes one success edge, and its
downstream task gets a `scheduler_task_joins` row (cycle 0), the counter the fan-in's
exactly-once start moves on. The old column and its index (0008) are dropped.

On SQLite the column's foreign key is taken out of the table's SQL first (the documented
writable_schema procedure; every row stays valid), then the column is dropped in place:
rebuilding scheduler_tasks would lose its partial index and CHECKs for nothing.

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

from mediabeat.db.tables import UTCDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

OLD_INDEX = "ix_scheduler_tasks_after_task_id"
OLD_FK = "fk_scheduler_tasks_after_task_id_scheduler_tasks"
_FK_CLAUSE = re.compile(rf"\s*CONSTRAINT {OLD_FK} FOREIGN KEY\s*\(after_task_id\)[^,)]*\([^)]*\)[^,]*,")


def _big_int() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _task_fk(name: str) -> sa.Column[int]:
    return sa.Column(name, _big_int(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "scheduler_task_edges",
        _task_fk("downstream_id"),
        _task_fk("upstream_id"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("cycle", sa.BigInteger(), nullable=True),
        sa.Column("last_run_id", _big_int(), nullable=True),
        sa.CheckConstraint("kind IN ('success', 'failure')", name=op.f("ck_scheduler_task_edges_kind")),
        sa.ForeignKeyConstraint(
            ["downstream_id"],
            ["scheduler_tasks.id"],
            name=op.f("fk_scheduler_task_edges_downstream_id_scheduler_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["upstream_id"],
            ["scheduler_tasks.id"],
            name=op.f("fk_scheduler_task_edges_upstream_id_scheduler_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("downstream_id", "upstream_id", name=op.f("pk_scheduler_task_edges")),
    )
    op.create_index("ix_scheduler_task_edges_upstream_id", "scheduler_task_edges", ["upstream_id"])
    op.create_table(
        "scheduler_task_joins",
        _task_fk("task_id"),
        sa.Column("cycle", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["scheduler_tasks.id"],
            name=op.f("fk_scheduler_task_joins_task_id_scheduler_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_scheduler_task_joins")),
    )
    op.execute(
        "INSERT INTO scheduler_task_edges (downstream_id, upstream_id, kind) "
        "SELECT id, after_task_id, 'success' FROM scheduler_tasks WHERE after_task_id IS NOT NULL"
    )
    op.execute(
        "INSERT INTO scheduler_task_joins (task_id, cycle) "
        "SELECT id, 0 FROM scheduler_tasks WHERE after_task_id IS NOT NULL"
    )
    op.drop_index(OLD_INDEX, table_name="scheduler_tasks")
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"ALTER TABLE scheduler_tasks DROP CONSTRAINT {OLD_FK}")
    else:
        _drop_sqlite_fk(bind)
    op.execute("ALTER TABLE scheduler_tasks DROP COLUMN after_task_id")


def _drop_sqlite_fk(bind: sa.Connection) -> None:
    """Take the after_task_id foreign key out of scheduler_tasks' SQL, so that the column can be dropped."""
    sql = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'scheduler_tasks'")
    old = sql.scalar_one()
    new = _FK_CLAUSE.sub("", old, count=1)
    if new == old:
        return  # no such constraint (a database built otherwise): nothing to take out
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'scheduler_tasks'", (new,))
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE scheduler_tasks ADD COLUMN after_task_id BIGINT "
            f"CONSTRAINT {OLD_FK} REFERENCES scheduler_tasks (id) ON DELETE SET NULL"
        )
    else:
        op.execute(
            "ALTER TABLE scheduler_tasks ADD COLUMN after_task_id INTEGER "
            f"CONSTRAINT {OLD_FK} REFERENCES scheduler_tasks (id) ON DELETE SET NULL"
        )
    # One upstream each: a fan-in keeps its first upstream; on-failure chains have no old form.
    op.execute(
        "UPDATE scheduler_tasks SET after_task_id = (SELECT min(e.upstream_id) FROM scheduler_task_edges e "
        "WHERE e.downstream_id = scheduler_tasks.id AND e.kind = 'success')"
    )
    op.create_index(OLD_INDEX, "scheduler_tasks", ["after_task_id"])
    op.drop_table("scheduler_task_joins")
    op.drop_index("ix_scheduler_task_edges_upstream_id", table_name="scheduler_task_edges")
    op.drop_table("scheduler_task_edges")
