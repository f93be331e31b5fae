"""Search on PostgreSQL: the GIN index of every article becomes one per band of older article ids.

A search collects its newest matches in id windows (db/stores/search.py). Above the floor of the
newest ids' index (migration 0034) a window reads that index's postings; below it, the index of
every article, whose GIN scan reads each word's whole posting list, whatever the window: at
1,000,000 articles, 48 ms for a window of 256,000 ids that wanted 187 matches of `alten` (18,101
articles), 33 ms of which the primary key's bitmap of the window's ids. And the planner, free to
choose, read the index of every article for some windows above the floor too.

Each band of older ids now has a partial GIN index of its own (`WHERE id >= low AND id < high`,
listed in `articles_search_bands`); with the newest ids' index they cover every id once, and the
index of every article is dropped. A window never crosses a band's bounds, so it is planned on
the band's index and reads the band's postings only. An article is written to one GIN index, not two.

This migration indexes the archive below the newest ids' floor in bands of 100,000 ids (on a
large archive it takes as long as building the GIN index again: docs/deploy.md). When the nightly
cleanup moves the newest ids' index up, the ids it leaves become a band of their own
(SearchStore.refresh_recent_index). SQLite: nothing changes.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mediabeat.db import rls

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None

# Keep in step with mediabeat.db.stores.search.RECENT_IDS and band_index.
BAND_IDS = 100_000


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("CREATE TABLE articles_search_bands (low BIGINT PRIMARY KEY, high BIGINT NOT NULL)")
    op.execute(f"GRANT SELECT ON articles_search_bands TO {rls.MEMBER_ROLE}")
    floor = int(bind.execute(sa.text("SELECT id FROM articles_search_recent_floor")).scalar_one())
    for low in range(1, floor, BAND_IDS):
        high = min(low + BAND_IDS, floor)
        op.execute(
            f"CREATE INDEX ix_articles_search_band_{low} ON articles USING gin (search_vector) "
            f"WHERE id >= {low} AND id < {high}"
        )
        op.execute(f"INSERT INTO articles_search_bands (low, high) VALUES ({low}, {high})")
    op.execute("DROP INDEX ix_articles_search_vector")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("CREATE INDEX ix_articles_search_vector ON articles USING gin (search_vector)")
    for low in bind.execute(sa.text("SELECT low FROM articles_search_bands")).scalars():
        op.execute(f"DROP INDEX IF EXISTS ix_articles_search_band_{int(low)}")
    op.execute("DROP TABLE articles_search_bands")
