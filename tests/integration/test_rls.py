"""Least privilege on PostgreSQL: connect as each role and see what it can and cannot see or do."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mediabeat.db.engine import Database, sync_url
from mediabeat.db.stores import search as search_store
from mediabeat.db.stores.retention import RetentionStore
from mediabeat.db.stores.search import RecentIndexNotRebuilt, SearchStore
from mediabeat.db.tables import articles, feeds, media_crawl_jobs, organizations
from mediabeat.search.query import parse_query
from mediabeat.tasks.base import RunContext
from mediabeat.tasks.cleanup import NightlyCleanup

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("backend", ["postgres"], indirect=True)]
NOW = datetime(2026, 11, 27, tzinfo=UTC)


def mediabeat(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MEDIABEAT_DATABASE_URL=database_url)
    return subprocess.run([sys.executable, "-m", "mediabeat", *args], env=env, capture_output=True, text=True)


@pytest.fixture
def roles(database_url: str) -> Iterator[tuple[str, str]]:
    """Two fresh login roles: one for the service, one org-scoped; dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    app, member = f"mbt_app_{suffix}", f"mbt_member_{suffix}"
    yield app, member
    with psycopg.connect(str(make_url(database_url).set(drivername="postgresql")), autocommit=True) as conn:
        database = make_url(database_url).database
        for role in (app, member):
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(f'REVOKE CONNECT ON DATABASE "{database}" FROM {role}')
                conn.execute(f"DROP ROLE {role}")  # memberships go with it; it owns nothing


def seed(database_url: str) -> dict[str, int]:
    engine = sa.create_engine(sync_url(database_url), poolclass=sa.pool.NullPool)
    ids = {}
    with engine.begin() as conn:
        for name in ("one", "two"):
            org = conn.execute(organizations.insert().values(name=name, created_at=NOW).returning(organizations.c.id))
            org_id = ids[name] = org.scalar_one()
            feed = conn.execute(
                feeds.insert()
                .values(org_id=org_id, url=f"https://{name}.example/rss", created_at=NOW, updated_at=NOW)
                .returning(feeds.c.id)
            ).scalar_one()
            conn.execute(
                articles.insert().values(
                    org_id=org_id,
                    feed_id=feed,
                    url=f"https://{name}.example/a",
                    url_hash=f"{name}-a",
                    fetched_at=NOW,
                    created_at=NOW,
                )
            )
            conn.execute(
                media_crawl_jobs.insert().values(
                    org_id=org_id, feed_id=feed, url=f"https://{name}.example/b", url_hash=f"{name}-b",
                    run_after=NOW, created_at=NOW, updated_at=NOW,
                )
            )  # fmt: skip
    engine.dispose()
    return ids


def connect_as(database_url: str, role: str) -> psycopg.Connection[tuple[object, ...]]:
    url = make_url(database_url).set(drivername="postgresql", username=role, password=None)
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)


def count(conn: psycopg.Connection[tuple[object, ...]], table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(str(row[0]))


def test_each_role_sees_what_it_may_and_nothing_more(database_url: str, roles: tuple[str, str]) -> None:
    app, member = roles
    ids = seed(database_url)
    printed = mediabeat(database_url, "db", "grant-app-role", app, "--create")
    assert printed.returncode == 0 and f"GRANT mediabeat_app TO {app};" in printed.stdout, printed.stderr
    for role, extra in ((app, []), (member, ["--member", "--org", "one"])):
        applied = mediabeat(database_url, "db", "grant-app-role", role, "--create", "--apply", *extra)
        assert applied.returncode == 0, applied.stderr

    with connect_as(database_url, app) as conn:  # the service: every org's rows, no DDL
        assert [count(conn, t) for t in ("organizations", "feeds", "articles", "media_crawl_jobs")] == [2, 2, 2, 2]
        assert count(conn, "scheduler_tasks") >= 1
        conn.execute("UPDATE media_crawl_jobs SET attempts = attempts + 1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE sneaky (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM alembic_version")

    with connect_as(database_url, member) as conn:
        # Its organisation comes from its login role: nothing to set.
        assert [count(conn, t) for t in ("organizations", "feeds", "articles", "media_crawl_jobs")] == [1, 1, 1, 1]
        urls = [r[0] for r in conn.execute("SELECT url FROM feeds UNION ALL SELECT url FROM articles")]
        assert all(u.startswith("https://one.example") for u in urls), urls
        # It may add a feed to its own org, but not to another, and cannot move rows out of its org.
        add_feed = "INSERT INTO feeds (org_id, url, created_at, updated_at) VALUES (%s, %s, now(), now())"
        conn.execute(add_feed, (ids["one"], "https://one.example/2"))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # row-level security refuses the row
            conn.execute(add_feed, (ids["two"], "https://x.example"))
        assert conn.execute("UPDATE feeds SET title = 'x' WHERE org_id = %s", (ids["two"],)).rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM articles")  # read-only for members
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM scheduler_tasks")  # scheduler tables are the service's only
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM users")
        assert_sees_only_its_org(conn, ids["two"])


def assert_sees_only_its_org(conn: psycopg.Connection[tuple[object, ...]], other: int) -> None:
    """However the member sets its session, the other organisation's rows stay out of sight."""
    tables = ("organizations", "feeds", "articles", "media_crawl_jobs")
    attempts = [
        f"SET app.org_id = '{other}'",
        f"SELECT set_config('app.org_id', '{other}', false)",
        "SET ROLE mediabeat_member",
        "RESET ROLE",
    ]
    for attempt in attempts:
        conn.execute(attempt)
        assert count(conn, f"feeds WHERE org_id = {other}") == 0, attempt
        assert [count(conn, t) for t in tables] == [1, 2, 1, 1], attempt
    for refused in (
        "SET ROLE mediabeat_app",
        "SET SESSION AUTHORIZATION postgres",
        "SELECT * FROM member_roles",
        f"UPDATE member_roles SET org_id = {other}",
        f"INSERT INTO member_roles (role_name, org_id, created_at) VALUES ('x', {other}, now())",
        "ALTER POLICY mediabeat_member_org ON feeds USING (true)",
        "ALTER FUNCTION mediabeat_member_org() SECURITY INVOKER",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(refused)
        assert conn.execute("SELECT count(*) FROM feeds").fetchone() is not None  # autocommit: still usable


def test_a_member_role_without_an_organisation_sees_nothing(database_url: str, roles: tuple[str, str]) -> None:
    _, member = roles
    ids = seed(database_url)
    applied = mediabeat(database_url, "db", "grant-app-role", member, "--create", "--apply", "--member", "--org", "two")
    assert applied.returncode == 0, applied.stderr
    with psycopg.connect(str(make_url(database_url).set(drivername="postgresql")), autocommit=True) as owner:
        owner.execute("DELETE FROM member_roles WHERE role_name = %s", (member,))
    with connect_as(database_url, member) as conn:
        conn.execute(f"SET app.org_id = '{ids['one']}'")
        assert [count(conn, t) for t in ("organizations", "feeds", "articles", "media_crawl_jobs")] == [0, 0, 0, 0]


def test_a_member_role_needs_an_existing_organisation(database_url: str, roles: tuple[str, str]) -> None:
    _, member = roles
    missing = mediabeat(database_url, "db", "grant-app-role", member, "--member")
    assert missing.returncode == 2 and "--org" in missing.stderr
    unknown = mediabeat(database_url, "db", "grant-app-role", member, "--create", "--apply", "--member", "--org", "x'y")
    assert unknown.returncode == 2 and "no organisation" in unknown.stderr and "Traceback" not in unknown.stderr


def test_the_owner_sees_everything(database_url: str) -> None:
    seed(database_url)
    # The owner (the migrating role) still sees everything.
    engine = sa.create_engine(sync_url(database_url), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(feeds)).scalar_one() == 2
    engine.dispose()


def test_grant_app_role_refuses_bad_names(database_url: str) -> None:
    done = mediabeat(database_url, "db", "grant-app-role", "Robert'); DROP TABLE feeds;--")
    assert done.returncode == 2 and "not a plain role name" in done.stderr and "Traceback" not in done.stderr


def test_a_member_role_searches_its_own_organisation_only(database_url: str, roles: tuple[str, str]) -> None:
    _, member = roles
    seed(database_url)
    engine = sa.create_engine(sync_url(database_url), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:  # the generated search_vector follows the new titles
        conn.execute(sa.text("UPDATE articles SET title = 'Harbour news', text = 'the harbour wall'"))
    engine.dispose()
    applied = mediabeat(database_url, "db", "grant-app-role", member, "--create", "--apply", "--member", "--org", "one")
    assert applied.returncode == 0, applied.stderr
    with connect_as(database_url, member) as conn:
        rows = conn.execute(
            "SELECT url, ts_rank_cd(search_vector, q), ts_headline('mediabeat_search', text, q) "
            "FROM articles, phraseto_tsquery('mediabeat_search', 'harbour') AS q WHERE search_vector @@ q"
        ).fetchall()
    assert [r[0] for r in rows] == ["https://one.example/a"]
    assert "<b>harbour</b>" in str(rows[0][2])


def test_a_member_role_manages_its_own_organisations_monitors_only(database_url: str, roles: tuple[str, str]) -> None:
    _, member = roles
    ids = seed(database_url)
    applied = mediabeat(database_url, "db", "grant-app-role", member, "--create", "--apply", "--member", "--org", "one")
    assert applied.returncode == 0, applied.stderr
    add = (
        "INSERT INTO monitors (org_id, name, query, feed_token_hash, created_by, created_at, updated_at)"
        " VALUES (%s, %s, 'harbour', %s, 'rls-test', now(), now())"
    )
    owner = psycopg.connect(str(make_url(database_url).set(drivername="postgresql")), autocommit=True)
    with owner:
        owner.execute(add, (ids["two"], "theirs", uuid.uuid4().hex))
    with connect_as(database_url, member) as conn:
        conn.execute(add, (ids["one"], "ours", uuid.uuid4().hex))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(add, (ids["two"], "sneaky", uuid.uuid4().hex))
        assert [r[0] for r in conn.execute("SELECT name FROM monitors")] == ["ours"]
        assert conn.execute("DELETE FROM monitors WHERE name = 'theirs'").rowcount == 0
        assert count(conn, "monitor_matches") == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM monitor_matches")  # matches are the service's to write


def test_a_member_sees_only_its_organisations_story_clusters(database_url: str, roles: tuple[str, str]) -> None:
    from mediabeat.db.tables import article_bands, article_clusters, story_clusters

    _, member = roles
    ids = seed(database_url)
    engine = sa.create_engine(sync_url(database_url), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for org_id in ids.values():
            article = conn.execute(sa.select(articles.c.id).where(articles.c.org_id == org_id)).scalar_one()
            story = conn.execute(
                story_clusters.insert().values(org_id=org_id, created_at=NOW).returning(story_clusters.c.id)
            ).scalar_one()
            conn.execute(
                article_clusters.insert().values(
                    article_id=article, org_id=org_id, cluster_id=story, signature=b"\0" * 8, clustered_at=NOW
                )
            )
            conn.execute(article_bands.insert().values(org_id=org_id, band_no=0, band_hash=42, article_id=article))
    engine.dispose()
    applied = mediabeat(database_url, "db", "grant-app-role", member, "--create", "--apply", "--member", "--org", "one")
    assert applied.returncode == 0, applied.stderr
    with connect_as(database_url, member) as conn:
        tables = ("story_clusters", "article_clusters", "article_bands")
        assert [count(conn, t) for t in tables] == [1, 1, 1]
        assert count(conn, f"article_bands WHERE org_id = {ids['two']}") == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM article_bands")  # read-only for members


async def test_the_search_index_refresh_needs_the_owner_and_leaves_the_index_serving(
    database_url: str, roles: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = roles
    seed(database_url)
    applied = mediabeat(database_url, "db", "grant-app-role", app, "--create", "--apply")
    assert applied.returncode == 0, applied.stderr
    monkeypatch.setattr(search_store, "RECENT_IDS", 0)  # two articles are then twice too many: a rebuild is due
    service = Database(make_url(database_url).set(username=app, password=None).render_as_string(hide_password=False))
    try:
        with pytest.raises(RecentIndexNotRebuilt, match="does not own the articles table"):
            await SearchStore(service).refresh_recent_index()
        cleanup = NightlyCleanup(
            store=RetentionStore(service), job_retention_days=30, run_retention_days=60, batch_size=10,
            search=SearchStore(service),
        )  # fmt: skip
        context = RunContext(1, "nightly-cleanup", "schedule", NOW, NOW, {}, logging.getLogger("mediabeat.test"))
        result = await cleanup(context)
        assert "does not own the articles table" in result["search_recent_index"]
        hits = await SearchStore(service).search(parse_query("example"), org_id=None, limit=5)
        assert hits == []  # the seeded articles have no text: the search runs, and finds nothing
    finally:
        await service.dispose()
    with connect_as(database_url, app) as conn:
        sql = "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_articles_search_recent%'"
        assert [r[0] for r in conn.execute(sql)] == ["ix_articles_search_recent"]
    # The command the owner runs instead; under the app role it says why it cannot, without a traceback.
    app_url = make_url(database_url).set(username=app, password=None).render_as_string(hide_password=False)
    with psycopg.connect(str(make_url(database_url).set(drivername="postgresql")), autocommit=True) as conn:
        # An article 300,000 ids up: the index (from id 1) then holds more than twice its 100,000 ids.
        conn.execute(
            "INSERT INTO articles (id, org_id, url, url_hash, fetched_at, created_at) "
            "SELECT 300000, org_id, url || '/far', 'far', fetched_at, created_at FROM articles LIMIT 1"
        )
    bands = "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_articles_search_band_%'"
    refused = mediabeat(app_url, "db", "search-upkeep")
    assert refused.returncode == 1 and "does not own the articles table" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    with connect_as(database_url, app) as conn:
        assert [r[0] for r in conn.execute(bands)] == []  # nor a band's index
    owner = mediabeat(database_url, "db", "search-upkeep")
    assert owner.returncode == 0 and "from id 200001 up" in owner.stdout, owner.stderr
    with connect_as(database_url, app) as conn:
        assert [r[0] for r in conn.execute(sql)] == ["ix_articles_search_recent"]  # no half-built copy left
        assert [r[0] for r in conn.execute(bands)] == ["ix_articles_search_band_1"]  # the ids it left
