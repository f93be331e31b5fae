"""Monitors: saved queries matched on arrival, their matches, deliveries and the matching watermark.

Seeds the `monitor-deliveries` task (every minute), which sends what is due: webhooks and
mail after each cool-down, hourly and daily digests, spike alerts, retries; and it matches
articles a failed hook left behind. On PostgreSQL the tables get row-level security like
the other organisation tables: members see and manage their own organisation's monitors.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from mediabeat.db import rls
from mediabeat.db.tables import CleanString, CleanText, JSONType, UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Tables with an org_id, and what a member login may do with their rows.
MEMBER_GRANTS = {
    "monitors": "SELECT, INSERT, UPDATE, DELETE",
    "monitor_matches": "SELECT",
    "monitor_deliveries": "SELECT",
}

tasks = sa.table(
    "scheduler_tasks",
    sa.column("name", sa.String),
    sa.column("description", sa.Text),
    sa.column("handler", sa.String),
    sa.column("cron", sa.String),
    sa.column("timezone", sa.String),
    sa.column("timeout_s", sa.Integer),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)


def _fk(column: str, table: str, source: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{table}.id"], name=op.f(f"fk_{source}_{column}_{table}"), ondelete="CASCADE"
    )


def _monitors() -> None:
    op.create_table(
        "monitors",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("name", CleanString(200), nullable=False),
        sa.Column("query", CleanText(), nullable=False),
        sa.Column("webhook_url", CleanString(2048)),
        sa.Column("webhook_secret", CleanString(128)),
        sa.Column("email", CleanString(320)),
        sa.Column("digest", CleanString(16), nullable=False, server_default="none"),
        sa.Column("cooldown_s", sa.Integer(), nullable=False, server_default="300"),
        sa.Column("spike_alerts", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("feed_token_hash", CleanString(128), nullable=False),
        sa.Column("start_after_article_id", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("created_by", CleanString(320), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("last_delivered_at", UTCDateTime()),
        sa.Column("last_spike_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors")),
        _fk("org_id", "organizations", "monitors"),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_monitors_org_id_name")),
        sa.UniqueConstraint("feed_token_hash", name=op.f("uq_monitors_feed_token_hash")),
        sa.CheckConstraint("digest IN ('none', 'hourly', 'daily')", name=op.f("ck_monitors_digest")),
    )


def _matches() -> None:
    op.create_table(
        "monitor_matches",
        sa.Column("id", ID, nullable=False),
        sa.Column("monitor_id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("article_id", ID, nullable=False),
        sa.Column("matched_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_matches")),
        _fk("monitor_id", "monitors", "monitor_matches"),
        _fk("org_id", "organizations", "monitor_matches"),
        _fk("article_id", "articles", "monitor_matches"),
        sa.UniqueConstraint("monitor_id", "article_id", name=op.f("uq_monitor_matches_monitor_id_article_id")),
    )
    op.create_index("ix_monitor_matches_monitor_id_matched_at", "monitor_matches", ["monitor_id", "matched_at"])
    op.create_index(
        "ix_monitor_matches_undelivered",
        "monitor_matches",
        ["monitor_id"],
        sqlite_where=sa.text("delivered_at IS NULL"),
        postgresql_where=sa.text("delivered_at IS NULL"),
    )


def _deliveries() -> None:
    op.create_table(
        "monitor_deliveries",
        sa.Column("id", ID, nullable=False),
        sa.Column("monitor_id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("channel", CleanString(16), nullable=False),
        sa.Column("kind", CleanString(16), nullable=False),
        sa.Column("status", CleanString(16), nullable=False),
        sa.Column("payload", JSONType(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime()),
        sa.Column("last_error", CleanText()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_deliveries")),
        _fk("monitor_id", "monitors", "monitor_deliveries"),
        _fk("org_id", "organizations", "monitor_deliveries"),
    )
    op.create_index("ix_monitor_deliveries_status_next_attempt_at", "monitor_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_monitor_deliveries_monitor_id_id", "monitor_deliveries", ["monitor_id", "id"])


def _watermarks() -> None:
    op.create_table(
        "monitor_cursors",
        sa.Column("org_id", ID, nullable=False, autoincrement=False),
        sa.Column("last_article_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_monitor_cursors")),
        _fk("org_id", "organizations", "monitor_cursors"),
    )
    op.create_table(
        "monitor_scanned",
        sa.Column("article_id", ID, nullable=False, autoincrement=False),
        sa.Column("org_id", ID, nullable=False),
        sa.PrimaryKeyConstraint("article_id", name=op.f("pk_monitor_scanned")),
        _fk("article_id", "articles", "monitor_scanned"),
        _fk("org_id", "organizations", "monitor_scanned"),
    )
    op.create_index("ix_monitor_scanned_org_id_article_id", "monitor_scanned", ["org_id", "article_id"])


def _row_level_security() -> None:
    predicate = rls.member_org_predicate("org_id")
    for table, grants in MEMBER_GRANTS.items():
        op.execute(f"GRANT {grants} ON {table} TO {rls.MEMBER_ROLE}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY mediabeat_service ON {table} TO {rls.APP_ROLE} USING (true) WITH CHECK (true)")
        op.execute(
            f"CREATE POLICY mediabeat_member_org ON {table} TO {rls.MEMBER_ROLE} "
            f"USING ({predicate}) WITH CHECK ({predicate})"
        )
    op.execute(f"GRANT USAGE ON SEQUENCE monitors_id_seq TO {rls.MEMBER_ROLE}")


def upgrade() -> None:
    _monitors()
    _matches()
    _deliveries()
    _watermarks()
    now = datetime.now(UTC)
    op.bulk_insert(
        tasks,
        [
            {
                "name": "monitor-deliveries",
                "description": "Send due monitor webhooks, mail, digests and spike alerts; match what a hook missed",
                "handler": "monitor_deliveries",
                "cron": "* * * * *",
                "timezone": "UTC",
                "timeout_s": 300,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        _row_level_security()


def downgrade() -> None:
    op.execute(tasks.delete().where(tasks.c.name == "monitor-deliveries"))
    for table in ("monitor_scanned", "monitor_cursors", "monitor_deliveries", "monitor_matches", "monitors"):
        op.drop_table(table)
