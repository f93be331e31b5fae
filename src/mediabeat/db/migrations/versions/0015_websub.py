"""WebSub subscriptions, and the websub-renew task that subscribes, renews and gives up.

One row per feed whose feed advertises a hub. On PostgreSQL the table has row-level security
with a policy for the app role only: it holds the shared secrets, so member roles see nothing.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from mediabeat.db import rls
from mediabeat.db.tables import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TABLE = "websub_subscriptions"
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

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


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", _ID, nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("feed_id", _ID, nullable=False),
        sa.Column("hub", sa.String(length=2048), nullable=False),
        sa.Column("topic", sa.String(length=2048), nullable=False),
        sa.Column("callback_token", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("lease_seconds", sa.Integer(), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_push_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'verified', 'denied', 'expired', 'unsubscribed')",
            name=op.f("ck_websub_subscriptions_state"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_websub_subscriptions_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name=op.f("fk_websub_subscriptions_feed_id_feeds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_websub_subscriptions")),
        sa.UniqueConstraint("feed_id", name=op.f("uq_websub_subscriptions_feed_id")),
        sa.UniqueConstraint("callback_token", name=op.f("uq_websub_subscriptions_callback_token")),
    )
    op.create_index("ix_websub_subscriptions_next_attempt_at", TABLE, ["next_attempt_at"], unique=False)
    now = datetime.now(UTC)
    op.bulk_insert(
        tasks,
        [
            {
                "name": "websub-renew",
                "description": "Subscribe to the WebSub hubs feeds advertise, renew leases before they expire, "
                "and give up on hubs that never verify",
                "handler": "websub_renew",
                "cron": "* * * * *",
                "timezone": "UTC",
                "timeout_s": 300,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in rls.service_only_statements(TABLE):
            op.execute(statement)


def downgrade() -> None:
    op.execute(tasks.delete().where(tasks.c.name == "websub-renew"))
    op.drop_index("ix_websub_subscriptions_next_attempt_at", table_name=TABLE)
    op.drop_table(TABLE)
