"""Alert rules per task (after N failures, late, missing, slow, mute, own webhook or address) and the alerts sent.

`task_alert_rules` holds at most one row per task; `task_alerts` one row per alert, whose
unique (task_id, kind, key) makes each alert go out once across every node.

Revision ID: 0020
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mediabeat.db.tables import CleanString, CleanText, UTCDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "task_alert_rules",
        sa.Column("task_id", _ID, nullable=False),
        sa.Column("after_failures", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("late_after_s", sa.Integer()),
        sa.Column("missing", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("slower_than_s", sa.Integer()),
        sa.Column("slower_than_p95", sa.Double()),
        sa.Column("mute_until", UTCDateTime()),
        sa.Column("webhook_url", CleanText()),
        sa.Column("email", CleanString(254)),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("after_failures >= 1", name=op.f("ck_task_alert_rules_after_failures")),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["scheduler_tasks.id"],
            name=op.f("fk_task_alert_rules_task_id_scheduler_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_task_alert_rules")),
    )
    op.create_table(
        "task_alerts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("task_id", _ID, nullable=False),
        sa.Column("kind", CleanString(16), nullable=False),
        sa.Column("key", CleanString(64), nullable=False),
        sa.Column("run_id", _ID),
        sa.Column("occurrence", UTCDateTime()),
        sa.Column("message", CleanText(), nullable=False),
        sa.Column("destination", CleanText(), nullable=False),
        sa.Column("muted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("node_id", CleanString(200)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("task_id", "kind", "key", name=op.f("uq_task_alerts_key")),
        sa.ForeignKeyConstraint(
            ["task_id"], ["scheduler_tasks.id"], name=op.f("fk_task_alerts_task_id_scheduler_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_alerts")),
    )
    op.create_index("ix_task_alerts_task_id_id", "task_alerts", ["task_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_task_alerts_task_id_id", table_name="task_alerts")
    op.drop_table("task_alerts")
    op.drop_table("task_alert_rules")
