"""Search on SQLite: the words held by half of the articles, which bm25() weighs at nothing, are recorded.

FTS5's bm25() weighs a word by how many articles hold it: log((N - n + 0.5) / (n + 0.5)), and 1e-6
when that is not positive, that is when the word is in at least half of the N articles (`und`,
`der` or `in` in a German-heavy archive). Before it scores a row it counts those articles over
the whole index: 15-30 ms for such a word at 1,000,000 articles, for a weight that cannot move a
score's three digits. `search_weightless_words` lists the words that weigh nothing in both FTS5
indexes, so that ranking leaves them out (mediabeat.search.sql.to_fts5_ranking).

`articles_search_recent_vocab` is FTS5's list of the words of the newest articles' index with
the number of articles holding each; the words held by half of them are counted in the index of
every article. The nightly cleanup counts them again (SearchStore.count_weightless_words); this
migration counts them once, so an existing archive is ranked that way from the start.
PostgreSQL ranks with ts_rank_cd, which weighs no word by its frequency: nothing changes there.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

_RECENT = "(SELECT count(*) FROM articles WHERE id >= (SELECT id FROM articles_search_recent_floor))"
SQLITE_UPGRADE = (
    "CREATE VIRTUAL TABLE articles_search_recent_vocab USING fts5vocab(articles_search_recent, row)",
    """CREATE TABLE search_weightless_words (
        term TEXT PRIMARY KEY,
        articles INTEGER NOT NULL,
        recent_articles INTEGER NOT NULL,
        counted_at TIMESTAMP NOT NULL
    )""",
    f"""INSERT INTO search_weightless_words (term, articles, recent_articles, counted_at)
        SELECT term, (SELECT count(*) FROM articles_search WHERE articles_search MATCH
                      '"' || replace(term, '"', '""') || '"'), doc, CURRENT_TIMESTAMP
        FROM articles_search_recent_vocab WHERE 2 * doc >= {_RECENT}""",
    "DELETE FROM search_weightless_words WHERE 2 * articles < (SELECT count(*) FROM articles)",
)
SQLITE_DOWNGRADE = (
    "DROP TABLE IF EXISTS search_weightless_words",
    "DROP TABLE IF EXISTS articles_search_recent_vocab",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for statement in SQLITE_UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for statement in SQLITE_DOWNGRADE:
            op.execute(statement)
