"""`mediabeat monitors` as a user runs it: a monitor made before a crawl of the demo site has its matches."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest

from mediabeat.demo import content as demo_content
from mediabeat.demo.site import create_demo_app, running_demo_site
from tests.processes.harness import mediabeat, mediabeat_in_process

# Half of the demo site's subjects: which of its articles a crawl finds depends on the hour, and a query
# for two subjects found none of the thirty newest in some hours.
SUBJECTS = "harbour OR council OR bank OR rail OR hospital OR university OR union OR agency"


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "MEDIABEAT_DATABASE_URL": database_url,
        "MEDIABEAT_CRAWLER_ALLOW_PRIVATE_NETWORKS": "true",
        "MEDIABEAT_EXTRACTION_WORKERS": "1",
        "COLUMNS": "200",
    }


def ok(*args: str, env: dict[str, str]) -> str:
    out = mediabeat_in_process(*args, env=env)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return out.stdout


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_a_monitor_created_before_the_crawl_lists_what_the_crawl_stored(env: dict[str, str]) -> None:
    # The first command and a refused query run as processes of their own; the rest in this process.
    assert mediabeat("orgs", "create", "mon-org", env=env).returncode == 0
    created = json.loads(
        ok("monitors", "create", "harbour", "--org", "mon-org", "--query", SUBJECTS, "--json", env=env)
    )
    assert created["name"] == "harbour" and created["feed_url"].endswith(".atom")
    bad = mediabeat("monitors", "create", "bad", "--org", "mon-org", "--query", '"harbour', env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("error: unbalanced quote at column 1")
    again = mediabeat_in_process("monitors", "create", "harbour", "--org", "mon-org", "--query", "x", env=env)
    assert again.returncode == 1 and "already" in again.stderr
    private = mediabeat_in_process(
        "monitors",
        "create",
        "p",
        "--org",
        "mon-org",
        "--query",
        "x",
        "--webhook",
        "http://10.0.0.1/",
        env={**env, "MEDIABEAT_CRAWLER_ALLOW_PRIVATE_NETWORKS": "false"},
    )
    assert private.returncode == 2 and private.stderr == (
        "error: the webhook URL is refused: 10.0.0.1 is an address the crawler never fetches (private network); "
        "list its range in MEDIABEAT_CRAWLER_ALLOWED_NETWORKS to allow it\n"
    )
    assert json.loads(ok("monitors", "matches", "harbour", "--org", "mon-org", "--json", env=env)) == []

    config = demo_content.DemoSiteConfig(feed_size=15)
    with running_demo_site(create_demo_app(config)) as urls:
        for section in ("world", "business"):
            ok("feeds", "add", f"{urls[0].rstrip('/')}/feeds/{section}.rss", "--org", "mon-org", env=env)
        ok("tasks", "run", "hourly-rss-fetch", env=env)
        ok("tasks", "run", "crawl-queue", env=env)

    matches = json.loads(ok("monitors", "matches", "harbour", "--org", "mon-org", "--json", env=env))
    assert matches and all({"article_id", "url", "title", "matched_at"} <= set(m) for m in matches)
    rows = list(
        csv.DictReader(
            io.StringIO(ok("monitors", "matches", "harbour", "--org", "mon-org", "--format", "csv", env=env))
        )
    )
    assert [int(r["article_id"]) for r in rows] == [m["article_id"] for m in matches]
    jsonl = ok("monitors", "matches", "harbour", "--org", "mon-org", "--format", "jsonl", env=env).splitlines()
    assert len(jsonl) == len(rows)
    listed = json.loads(ok("monitors", "list", "--json", env=env))
    assert [m["name"] for m in listed] == ["harbour"] and "webhook_secret" not in listed[0]
    assert "deleted monitor 'harbour'" in ok("monitors", "delete", "harbour", "--org", "mon-org", env=env)
    assert json.loads(ok("monitors", "list", "--org", "mon-org", "--json", env=env)) == []
