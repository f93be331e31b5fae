"""Crawl jobs carry the publication date their feed entry gave.

An article whose page names no date takes its feed entry's date (pubDate, published,
updated) instead. `media_crawl_jobs.feed_published_at` is null when the entry had none.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mediabeat.db.tables import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("media_crawl_jobs", sa.Column("feed_published_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("media_crawl_jobs") as batch_op:
        batch_op.drop_column("feed_published_at")
