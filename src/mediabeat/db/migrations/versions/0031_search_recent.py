"""Search on SQLite: a second FTS5 index over the newest 100,000 article ids, where common words are ranked.

FTS5's bm25() counts the articles holding each phrase of a query over the whole index before it
scores the first row: at 1,000,000 articles that is 15 ms for a word in two articles of three and
70 ms for a phrase of two such words, whatever the number of rows ranked. A search ranks its
newest 2,000 matches only (db/stores/search.py); when those all lie among the newest articles,
ranking them in an index of those articles alone makes the counts ten times cheaper.

`articles_search_recent` is an external-content FTS5 table over articles, with the tokenizer and
prefix indexes of `articles_search`, holding the articles whose id is at least
`articles_search_recent_floor.id` (one row). Its triggers keep that true: an inserted article is
added, the ids that fall 100,000 below the newest are taken out (FTS5 reads their words back from
articles, which still holds them) and the floor moves up; a deleted or edited article is taken out
or re-indexed only when it is in the slice (FTS5 must never be told to delete a row it does not
hold). PostgreSQL ranks with ts_rank_cd, which counts nothing across articles: nothing changes there.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

RECENT_IDS = 100_000
_FLOOR = "(SELECT id FROM articles_search_recent_floor)"
SQLITE_UPGRADE = (
    """CREATE VIRTUAL TABLE articles_search_recent USING fts5(
        title, text, content='articles', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2', prefix='2 3')""",
    "CREATE TABLE articles_search_recent_floor (id INTEGER NOT NULL)",
    f"INSERT INTO articles_search_recent_floor (id) SELECT coalesce(max(id), 0) - {RECENT_IDS - 1} FROM articles",
    f"""INSERT INTO articles_search_recent(rowid, title, text)
        SELECT id, title, text FROM articles WHERE id >= {_FLOOR}""",
    f"""CREATE TRIGGER articles_search_recent_insert AFTER INSERT ON articles BEGIN
        INSERT INTO articles_search_recent(rowid, title, text)
            SELECT new.id, new.title, new.text WHERE new.id >= {_FLOOR};
        DELETE FROM articles_search_recent WHERE rowid >= {_FLOOR} AND rowid <= new.id - {RECENT_IDS};
        UPDATE articles_search_recent_floor SET id = new.id - {RECENT_IDS - 1} WHERE id <= new.id - {RECENT_IDS};
    END""",
    f"""CREATE TRIGGER articles_search_recent_delete AFTER DELETE ON articles WHEN old.id >= {_FLOOR} BEGIN
        INSERT INTO articles_search_recent(articles_search_recent, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
    END""",
    f"""CREATE TRIGGER articles_search_recent_update AFTER UPDATE OF title, text ON articles
        WHEN old.id >= {_FLOOR} BEGIN
        INSERT INTO articles_search_recent(articles_search_recent, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
        INSERT INTO articles_search_recent(rowid, title, text) VALUES (new.id, new.title, new.text);
    END""",
)
SQLITE_DOWNGRADE = (
    "DROP TRIGGER IF EXISTS articles_search_recent_update",
    "DROP TRIGGER IF EXISTS articles_search_recent_delete",
    "DROP TRIGGER IF EXISTS articles_search_recent_insert",
    "DROP TABLE IF EXISTS articles_search_recent",
    "DROP TABLE IF EXISTS articles_search_recent_floor",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for statement in SQLITE_UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for statement in SQLITE_DOWNGRADE:
            op.execute(statement)
