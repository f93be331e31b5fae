"""Feeds: the window size, `feeds.window_entries` (entries listed at the last parsed fetch).

The feed schedule's window rule (src/mediabeat/schedule/freshness.py) keeps a feed's interval
within a third of the time its listed entries last at its publishing rate. On a 304, an
unchanged body or a failure nothing is parsed, so it assumed 10 entries; with the stored size
it uses the feed's own, and a list that grew since the last parse shows that nothing fell off
it. Nullable: a feed not parsed since this migration has no known window (10 is assumed, as
before). Plain ADD / DROP COLUMN: no table is rebuilt on SQLite.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feeds", sa.Column("window_entries", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL): a batch rebuild of feeds is not needed for one column.
    op.execute("ALTER TABLE feeds DROP COLUMN window_entries")
