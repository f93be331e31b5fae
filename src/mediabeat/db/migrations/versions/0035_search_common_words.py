"""Search on SQLite: the words held by a twentieth of the newest articles or more are listed.

A word or Boolean query whose ranked candidates reach below the newest articles' index is ranked
in the index of every article, where FTS5's bm25() first counts the articles holding each word it
weighs: 7-14 ms for a word such as `haben` (in 23 % of the articles) at 1,000,000 articles. When
the query weighs such a common word, its candidates among the newest articles are ranked in their
index instead, and the older ones follow, newest first (SearchStore._ranking_plan). A rare word
keeps its ranking over the whole archive, where its count is cheap.

`search_common_words` lists them with how many of the newest articles hold each (FTS5's own list,
`articles_search_recent_vocab`). The nightly cleanup lists them again
(SearchStore.count_common_words); this migration lists them once. PostgreSQL: nothing changes.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

# Keep in step with mediabeat.db.stores.search.COMMON_SHARE.
COMMON_SHARE = 20
_RECENT = "(SELECT count(*) FROM articles WHERE id >= (SELECT id FROM articles_search_recent_floor))"
SQLITE_UPGRADE = (
    """CREATE TABLE search_common_words (
        term TEXT PRIMARY KEY,
        recent_articles INTEGER NOT NULL,
        counted_at TIMESTAMP NOT NULL
    )""",
    f"""INSERT INTO search_common_words (term, recent_articles, counted_at)
        SELECT term, doc, CURRENT_TIMESTAMP FROM articles_search_recent_vocab
        WHERE {COMMON_SHARE} * doc >= {_RECENT}""",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for statement in SQLITE_UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE IF EXISTS search_common_words")
