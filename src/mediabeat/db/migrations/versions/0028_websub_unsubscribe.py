"""WebSub unsubscriptions: subscriptions being ended, kept until the hub confirms (or we give up).

A feed that is deleted or disabled, whose organisation is removed, or whose hub changes has its
subscription moved here; websub-renew sends the hub `hub.mode=unsubscribe` and the callback
confirms only these. No foreign keys: the feed and its organisation may be gone by then. On
PostgreSQL the table has the same service-only row-level security as websub_subscriptions.

Revision ID: 0028
Revises: 0026
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mediabeat.db import rls
from mediabeat.db.tables import UTCDateTime

revision = "0028"
down_revision = "0026"
branch_labels = None
depends_on = None

TABLE = "websub_unsubscriptions"
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", _ID, nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("feed_id", _ID, nullable=False),
        sa.Column("hub", sa.String(length=2048), nullable=False),
        sa.Column("topic", sa.String(length=2048), nullable=False),
        sa.Column("callback_token", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'confirmed', 'given_up')", name=op.f("ck_websub_unsubscriptions_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_websub_unsubscriptions")),
        sa.UniqueConstraint("callback_token", name=op.f("uq_websub_unsubscriptions_callback_token")),
    )
    op.create_index("ix_websub_unsubscriptions_next_attempt_at", TABLE, ["next_attempt_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for statement in rls.service_only_statements(TABLE):
            op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_websub_unsubscriptions_next_attempt_at", table_name=TABLE)
    op.drop_table(TABLE)
