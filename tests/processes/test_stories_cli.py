"""`mediabeat stories` and `articles show`: a rebuild clusters existing articles, the list is largest first,
and an article carries its cluster (SQLite and PostgreSQL).

The first command runs as a process of its own; the rest in this process (tests/processes/harness.py).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.orgs import OrgStore
from tests.processes.harness import mediabeat, mediabeat_in_process
from tests.story_helpers import copies_of, new_article

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


async def _seed(database_url: str) -> tuple[list[int], int]:
    db = Database(database_url)
    try:
        org = await OrgStore(db).create("newsroom", now=NOW)
        big, small = copies_of(2), copies_of(3)
        articles = [new_article(org.id, s, n) for s, n in [*big, *small]] + [new_article(org.id, "world", 1)]
        ids = await ArticleStore(db).save_many(articles, now=NOW)
        return ids[: len(big)], ids[-1]
    finally:
        await db.dispose()


def test_rebuild_list_show(cli_env: dict[str, str], database_url: str) -> None:
    copies, lone = asyncio.run(_seed(database_url))
    before = json.loads(mediabeat("articles", "show", str(copies[0]), "--json", env=cli_env).stdout)
    assert before["cluster_id"] is None and before["cluster_size"] is None  # not clustered until the rebuild
    rebuilt = mediabeat_in_process("stories", "rebuild", "--org", "newsroom", env=cli_env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "stories with copies" in rebuilt.stdout
    article = json.loads(mediabeat_in_process("articles", "show", str(copies[0]), "--json", env=cli_env).stdout)
    assert article["cluster_size"] == len(copies) and article["cluster_id"] > 0
    alone = json.loads(mediabeat_in_process("articles", "show", str(lone), "--json", env=cli_env).stdout)
    assert alone["cluster_size"] == 1
    listed = json.loads(mediabeat_in_process("stories", "list", "--org", "newsroom", "--json", env=cli_env).stdout)
    assert [s["size"] for s in listed] == sorted((s["size"] for s in listed), reverse=True)
    assert listed[0]["id"] == article["cluster_id"] and listed[0]["size"] == len(copies)
    assert set(listed[0]) >= {"id", "size", "title", "first_seen", "last_seen", "outlets", "sites"}
    limited = mediabeat_in_process("stories", "list", "--org", "newsroom", "--limit", "1", "--json", env=cli_env)
    assert len(json.loads(limited.stdout)) == 1
    shown = mediabeat_in_process("stories", "show", str(article["cluster_id"]), env=cli_env)
    assert shown.returncode == 0 and f"{len(copies)} articles" in shown.stdout
    table = mediabeat_in_process("stories", "list", "--org", "newsroom", env=cli_env)
    assert table.returncode == 0 and str(article["cluster_id"]) in table.stdout
    missing = mediabeat_in_process("stories", "list", "--org", "nobody", env=cli_env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    unknown = mediabeat_in_process("stories", "show", "999999", env=cli_env)
    assert unknown.returncode == 2 and "no story" in unknown.stderr
