"""Per-host politeness shared by every crawling process: start times, cool-downs and request slots.

`host_politeness` holds each host's next allowed start, cool-down and robots.txt Crawl-delay;
`host_slots` one expiring lease per request in flight. Both start empty: a host gets its row
on its first request.

Revision ID: 0018
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mediabeat.db.tables import CleanString

revision = "0018"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "host_politeness",
        sa.Column("host", CleanString(300), nullable=False),
        sa.Column("next_start_at", sa.Double(), nullable=False),
        sa.Column("cooldown_until", sa.Double(), nullable=False),
        sa.Column("crawl_delay_s", sa.Double(), nullable=False),
        sa.Column("crawl_delay_until", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("host", name="pk_host_politeness"),
    )
    op.create_table(
        "host_slots",
        sa.Column("host", CleanString(300), nullable=False),
        sa.Column("holder", CleanString(200), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("host", "holder", name="pk_host_slots"),
    )


def downgrade() -> None:
    op.drop_table("host_slots")
    op.drop_table("host_politeness")
