"""Full-text search over articles' title and text: FTS5 on SQLite, a tsvector with a GIN index on PostgreSQL.

SQLite: `articles_search` is an external-content FTS5 table over articles (the text is not stored
twice), kept in step by three triggers, with the `unicode61 remove_diacritics 2` tokenizer and
prefix indexes for two- and three-letter prefixes. PostgreSQL: `articles.search_vector` is a
stored generated column (title weighted A, text B) in the `mediabeat_search` configuration:
`simple` (no stemming, no stop words, so it treats every language alike and a phrase is
matched word for word), with accents folded by `unaccent` when the server has that extension.
Either way an article is searchable as soon as its row is written, and the upgrade indexes the
articles already there.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SQLITE_UPGRADE = (
    """CREATE VIRTUAL TABLE articles_search USING fts5(
        title, text, content='articles', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2', prefix='2 3')""",
    """CREATE TRIGGER articles_search_insert AFTER INSERT ON articles BEGIN
        INSERT INTO articles_search(rowid, title, text) VALUES (new.id, new.title, new.text);
    END""",
    """CREATE TRIGGER articles_search_delete AFTER DELETE ON articles BEGIN
        INSERT INTO articles_search(articles_search, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
    END""",
    """CREATE TRIGGER articles_search_update AFTER UPDATE OF title, text ON articles BEGIN
        INSERT INTO articles_search(articles_search, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
        INSERT INTO articles_search(rowid, title, text) VALUES (new.id, new.title, new.text);
    END""",
    "INSERT INTO articles_search(articles_search) VALUES ('rebuild')",
)
SQLITE_DOWNGRADE = (
    "DROP TRIGGER IF EXISTS articles_search_update",
    "DROP TRIGGER IF EXISTS articles_search_delete",
    "DROP TRIGGER IF EXISTS articles_search_insert",
    "DROP TABLE IF EXISTS articles_search",
)
UNACCENT_WORDS = "asciiword, asciihword, hword_asciipart, word, hword, hword_part"
POSTGRES_VECTOR = (
    "ALTER TABLE articles ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('mediabeat_search'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('mediabeat_search'::regconfig, coalesce(text, '')), 'B')) STORED"
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        for statement in SQLITE_UPGRADE:
            op.execute(statement)
        return
    op.execute("CREATE TEXT SEARCH CONFIGURATION mediabeat_search (COPY = pg_catalog.simple)")
    if _unaccent(bind):
        op.execute(
            f"ALTER TEXT SEARCH CONFIGURATION mediabeat_search ALTER MAPPING FOR {UNACCENT_WORDS} WITH unaccent, simple"
        )
    op.execute(POSTGRES_VECTOR)
    op.execute("CREATE INDEX ix_articles_search_vector ON articles USING gin (search_vector)")


def _unaccent(bind: sa.Connection) -> bool:
    """Whether the unaccent dictionary can be used (created here if the server has it and we may)."""
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'unaccent'")).first()
    if available is None:
        return False
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS unaccent"))
    except sa.exc.DBAPIError:  # no privilege to create it: accents then stay as written
        return False
    return True


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for statement in SQLITE_DOWNGRADE:
            op.execute(statement)
        return
    op.execute("DROP INDEX IF EXISTS ix_articles_search_vector")
    op.execute("ALTER TABLE articles DROP COLUMN IF EXISTS search_vector")
    op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS mediabeat_search")
