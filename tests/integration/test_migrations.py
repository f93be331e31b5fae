"""The migrations build exactly the schema that tables.py declares, and can be undone."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mediabeat.db import migrate
from mediabeat.db.engine import sync_url
from mediabeat.db.tables import is_search_index_object, metadata


def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    engine = sa.create_engine(sync_url(database_url))
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": lambda name, *_: not is_search_index_object(name)}
        )
        differences = compare_metadata(context, metadata)
    engine.dispose()
    assert differences == []


def test_downgrade_to_nothing_and_back(database_url: str) -> None:
    engine = sa.create_engine(sync_url(database_url))
    with engine.connect() as conn:
        config = migrate.alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
        conn.commit()
        assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    migrate.upgrade(database_url)
    assert migrate.current_revision(database_url) == migrate.head_revision()


def test_the_search_migration_indexes_existing_articles(database_url: str) -> None:
    migrate.upgrade(database_url)
    engine = sa.create_engine(sync_url(database_url))
    with engine.connect() as conn:
        config = migrate.alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0010")
        conn.commit()
        org = conn.execute(
            sa.text("INSERT INTO organizations (name, created_at) VALUES ('old', CURRENT_TIMESTAMP) RETURNING id")
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO articles (org_id, url, url_hash, title, text, fetched_at, created_at) "
                "VALUES (:org, 'https://old.test/1', 'h1', 'Archived', 'a zeppelin over the harbour', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"org": org},
        )
        conn.commit()
    engine.dispose()
    migrate.upgrade(database_url)
    engine = sa.create_engine(sync_url(database_url))
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            sql = "SELECT title FROM articles WHERE search_vector @@ phraseto_tsquery('mediabeat_search', 'zeppelin')"
        else:
            sql = "SELECT title FROM articles_search WHERE articles_search MATCH '\"zeppelin\"'"
        assert conn.execute(sa.text(sql)).scalars().all() == ["Archived"]
    engine.dispose()


def test_the_story_pending_migration_marks_articles_without_a_cluster(database_url: str) -> None:
    engine = sa.create_engine(sync_url(database_url))
    with engine.connect() as conn:
        config = migrate.alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0023")
        conn.commit()
        org = conn.execute(
            sa.text("INSERT INTO organizations (name, created_at) VALUES ('old', CURRENT_TIMESTAMP) RETURNING id")
        ).scalar_one()
        insert = sa.text(
            "INSERT INTO articles (org_id, url, url_hash, title, text, fetched_at, created_at) "
            "VALUES (:org, :url, :url, 'Archived', 'text', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id"
        )
        clustered, left = (
            conn.execute(insert, {"org": org, "url": f"https://old.test/{n}"}).scalar_one() for n in (1, 2)
        )
        cluster = conn.execute(
            sa.text("INSERT INTO story_clusters (org_id, created_at) VALUES (:org, CURRENT_TIMESTAMP) RETURNING id"),
            {"org": org},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO article_clusters (article_id, org_id, cluster_id, signature, clustered_at) "
                "VALUES (:a, :org, :c, :sig, CURRENT_TIMESTAMP)"
            ),
            {"a": clustered, "org": org, "c": cluster, "sig": b"\0" * 4},
        )
        conn.commit()
    engine.dispose()
    migrate.upgrade(database_url)
    engine = sa.create_engine(sync_url(database_url))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT article_id FROM story_pending")).scalars().all() == [left]
    engine.dispose()
