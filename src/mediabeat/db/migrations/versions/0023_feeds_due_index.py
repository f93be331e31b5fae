"""An index for reading due feeds page by page: (next_fetch_at, id) over the active feeds.

hourly-rss-fetch reads the due feeds in pages by keyset on (next_fetch_at, id). The index on
(active, next_fetch_at) found the due range but not the order within one next_fetch_at; after
a pass that gives most feeds the same interval, most feeds share one next_fetch_at, and
PostgreSQL sorted that whole group again for every page (quadratic in the feed count).

Revision ID: 0023
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

INDEX = "ix_feeds_due"


def upgrade() -> None:
    op.create_index(
        INDEX,
        "feeds",
        ["next_fetch_at", "id"],
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="feeds")
