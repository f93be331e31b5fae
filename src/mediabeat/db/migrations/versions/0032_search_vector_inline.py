"""Search on PostgreSQL: each article's `tsvector` is kept in its row (STORAGE MAIN), not in the TOAST table.

A search ranks its newest 2,000 matches with ts_rank_cd, which reads each one's `tsvector` (3.7 kB
compressed on average). Stored out of line, each read is a probe of the TOAST table's index and
one or two of its pages besides the row's own: at 1,000,000 articles, ranking 2,000 scattered
candidates took 34-36 ms that way and 12-13 ms with the vectors in their rows (warm, same rows).
MAIN keeps the value compressed in the row and moves the other long columns (the text) out of
line first; a vector too large for a page still goes out of line.

The setting applies to rows written from now on: new articles, which are the ones searches rank
most. Existing rows keep their stored form until the table is rewritten (`VACUUM FULL articles`,
which locks the table while it runs: docs/deploy.md). SQLite: nothing to do.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE articles ALTER COLUMN search_vector SET STORAGE MAIN")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE articles ALTER COLUMN search_vector SET STORAGE EXTENDED")
