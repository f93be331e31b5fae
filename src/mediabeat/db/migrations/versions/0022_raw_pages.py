"""Kept raw HTML of crawled pages, for re-extraction: the article_raw_pages table.

One row per article (its latest fetch), zlib-compressed, deleted with its article and by
nightly-cleanup after MEDIABEAT_RAW_HTML_RETENTION_DAYS. A new table rather than a column of
articles: on SQLite a column there would mean rebuilding articles, which drops its FTS5 triggers.

Revision ID: 0022
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mediabeat.db.tables import CleanString, UTCDateTime

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "article_raw_pages",
        sa.Column("article_id", _ID, nullable=False),
        sa.Column("fetched_at", UTCDateTime(), nullable=False),
        sa.Column("url", CleanString(2048), nullable=False),
        sa.Column("content_type", CleanString(200)),
        sa.Column("feed_published_at", UTCDateTime()),
        sa.Column("compression", CleanString(16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"], ["articles.id"], name=op.f("fk_article_raw_pages_article_id_articles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("article_id", name=op.f("pk_article_raw_pages")),
    )
    op.create_index("ix_article_raw_pages_fetched_at", "article_raw_pages", ["fetched_at"])


def downgrade() -> None:
    op.drop_index("ix_article_raw_pages_fetched_at", table_name="article_raw_pages")
    op.drop_table("article_raw_pages")
