"""Story clusters with several real processes storing articles at once (SQLite and PostgreSQL): every article
is placed exactly once, copies stored by different processes share one cluster, and what a process killed
between storing and clustering left is placed by the sweep of two other processes, once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.demo.content import SECTIONS
from tests.processes.harness import REPO, base_env, engine
from tests.story_helpers import SITE, syndicated_story

# Every placement (an article_clusters row inserted) is logged by a trigger, so a test can count them.
PLACEMENTS_SQLITE = """
CREATE TABLE test_placements (article_id INTEGER NOT NULL);
CREATE TRIGGER log_placement AFTER INSERT ON article_clusters
BEGIN INSERT INTO test_placements (article_id) VALUES (NEW.article_id); END;
"""
PLACEMENTS_POSTGRES = """
CREATE TABLE test_placements (article_id BIGINT NOT NULL);
CREATE FUNCTION log_placement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO test_placements (article_id) VALUES (NEW.article_id); RETURN NEW; END $$;
CREATE TRIGGER log_placement AFTER INSERT ON article_clusters FOR EACH ROW EXECUTE FUNCTION log_placement();
"""


def start(mode: str, org_id: int, go: Path, sections: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.processes.story_worker_main", mode, str(org_id), str(go), ",".join(sections)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def org_with_placement_log(database_url: str) -> int:
    async def create() -> int:
        db = Database(database_url)
        try:
            return (await OrgStore(db).create("newsroom", now=datetime.now(UTC))).id
        finally:
            await db.dispose()

    org_id = asyncio.run(create())
    eng = engine(database_url)
    with eng.begin() as conn:
        ddl = PLACEMENTS_POSTGRES if conn.dialect.name == "postgresql" else PLACEMENTS_SQLITE
        for statement in ddl.split(";\n"):
            if statement.strip():
                conn.exec_driver_sql(statement)
    eng.dispose()
    return org_id


def test_storing_processes_a_killed_one_and_two_sweepers_place_each_article_once(
    database_url: str, tmp_path: Path
) -> None:
    org_id = org_with_placement_log(database_url)
    env = base_env(database_url)
    sections = [slug for slug, _ in SECTIONS]
    shares = [sections[0::3], sections[1::3], sections[2::3]]
    go = tmp_path / "go"
    storers = [start("store", org_id, go, shares[0], env), start("store", org_id, go, shares[1], env)]
    dying = start("die", org_id, go, shares[2], env)
    go.touch()  # all three store at once
    for proc in storers:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    dying.communicate(timeout=300)
    assert dying.returncode == -signal.SIGKILL  # killed after storing, before any hook ran
    eng = engine(database_url)
    with eng.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM story_pending")).scalar_one()
    assert left == len(shares[2]) * 40  # exactly what the dead process stored is waiting

    go2 = tmp_path / "go-sweep"
    sweepers = [start("sweep", org_id, go2, [], env), start("sweep", org_id, go2, [], env)]
    go2.touch()  # two sweeps at once, as two nodes' monitor-deliveries runs
    placed = []
    for proc in sweepers:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        placed.append(int(out.strip().splitlines()[-1]))
    assert sum(placed) == left

    with eng.connect() as conn:
        articles = dict(conn.execute(sa.text("SELECT id, url FROM articles WHERE org_id = :o"), {"o": org_id}).all())
        counts = Counter(conn.execute(sa.text("SELECT article_id FROM test_placements")).scalars())
        clusters = dict(conn.execute(sa.text("SELECT article_id, cluster_id FROM article_clusters")).all())
        pending = conn.execute(sa.text("SELECT count(*) FROM story_pending")).scalar_one()
    eng.dispose()
    assert len(articles) == len(sections) * 40 and pending == 0
    assert set(counts) == set(articles) and set(counts.values()) == {1}  # each article placed exactly once
    by_story: dict[int, set[int]] = {}
    for article_id, url in articles.items():
        section, page = url.split("/")[-2:]
        story = syndicated_story(SITE, section, int(page.split("-")[0]))
        if story is not None:
            by_story.setdefault(story, set()).add(clusters[article_id])
    assert len(by_story) > 5
    assert all(len(c) == 1 for c in by_story.values())  # copies stored by different processes: one story
