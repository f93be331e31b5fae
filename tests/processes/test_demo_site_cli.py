"""`mediabeat demo-site`, `serve --demo` and `demo remove` as a user runs them: real processes and HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from mediabeat.app import build_services
from mediabeat.cli.demo_cmd import DEMO_ORG, DEMO_SITE, ensure_demo_org
from mediabeat.crawler.urls import canonicalize, url_hash
from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore, NewArticle
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import JobStore, NewJob
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.domain.content import SYSTEM
from mediabeat.settings import load_settings
from tests.processes.harness import mediabeat
from tests.servers import free_port

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


@contextmanager
def background(*args: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mediabeat", *args], env=env, stdout=out, stderr=out)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_line(log: Path, needle: str, proc: subprocess.Popen[bytes], within: float = 30) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if needle in line:
                return line
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not in the output: {log.read_text(errors='replace')[-2000:]}")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MEDIABEAT_DATABASE_URL": f"sqlite:///{tmp_path}/mb.db",
        "COLUMNS": "200",
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }


@pytest.mark.xdist_group("demo-processes")
def test_demo_site_command_listens_on_several_loopback_addresses(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "site.log"
    with background("demo-site", "--port", "0", "--hosts", "3", env=env, log=log) as proc:
        line = wait_for_line(log, "demo site on http://127.0.0.3:", proc)
        root = line.split()[3].rstrip("/")
        port = root.rsplit(":", 1)[1]
        with httpx.Client(timeout=10) as client:
            for host in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
                opml = client.get(f"http://{host}:{port}/feeds.opml")
                assert opml.status_code == 200 and f"http://{host}:{port}/feeds/world.rss" in opml.text
            assert client.get(f"{root}/robots.txt").text.startswith("User-agent: *")


@pytest.mark.parametrize("args", [["--host", "0.0.0.0"], ["--extra-hosts", "127.0.0.2,192.168.1.5"]])
def test_demo_site_refuses_addresses_outside_loopback(env: dict[str, str], args: list[str]) -> None:
    out = mediabeat("demo-site", "--port", "0", *args, env=env)
    assert out.returncode == 2
    assert "is not a loopback address" in out.stderr and "--allow-public" in out.stderr
    assert "Traceback" not in out.stderr


async def test_demo_org_is_kept_in_step_with_the_site_and_removed_in_one_command(
    db: Database, database_url: str
) -> None:
    services = build_services(load_settings(database_url=database_url), db=db)
    org, count = await ensure_demo_org(services, base_url="http://127.0.0.1:1111", config=DEMO_SITE, actor=SYSTEM)
    assert org.is_demo and org.name == DEMO_ORG and count == 12
    again, _ = await ensure_demo_org(services, base_url="http://127.0.0.1:2222", config=DEMO_SITE, actor=SYSTEM)
    assert again.id == org.id
    feeds = await FeedStore(db).list(org_id=org.id)
    assert len(feeds) == 12 and all(f.url.startswith("http://127.0.0.1:2222/feeds/") for f in feeds)
    url = "http://127.0.0.1:2222/world/1-x.html"
    digest = url_hash(canonicalize(url))
    await JobStore(db).enqueue([NewJob(org_id=org.id, feed_id=feeds[0].id, url=url, url_hash=digest)], now=NOW)
    await ArticleStore(db).save(
        NewArticle(
            org_id=org.id,
            feed_id=feeds[0].id,
            url=url,
            url_hash=digest,
            canonical_url=url,
            title="t",
            author=None,
            published_at=None,
            summary=None,
            text="x" * 200,
            language="en",
        ),
        now=NOW,
    )
    other = await OrgStore(db).create("newsroom", now=NOW)
    await FeedStore(db).add(other.id, "https://example.org/feed.xml", now=NOW)

    env = {**os.environ, "MEDIABEAT_DATABASE_URL": database_url}
    out = mediabeat("demo", "remove", env=env)
    assert out.returncode == 0, out.stderr
    assert "removed the demo organisation with 12 feeds and 1 articles" in out.stdout
    assert await OrgStore(db).get_by_name(DEMO_ORG) is None
    assert await ArticleStore(db).count(org_id=org.id) == 0
    assert await FeedStore(db).list(org_id=org.id) == []
    assert len(await FeedStore(db).list(org_id=other.id)) == 1
    again_out = mediabeat("demo", "remove", env=env)
    assert again_out.returncode == 0 and "nothing to remove" in again_out.stdout


async def test_demo_remove_refuses_an_org_named_demo_that_is_not_the_demo(db: Database, database_url: str) -> None:
    await OrgStore(db).create(DEMO_ORG, now=NOW)
    out = mediabeat("demo", "remove", env={**os.environ, "MEDIABEAT_DATABASE_URL": database_url})
    assert out.returncode == 1 and "not created by `serve --demo`" in out.stderr
    assert await OrgStore(db).get_by_name(DEMO_ORG) is not None


@pytest.mark.slow
@pytest.mark.xdist_group("demo-processes")
def test_serve_demo_shows_articles_within_a_minute_and_demo_remove_cleans_up(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in env.items() if k != "MEDIABEAT_CRAWLER_ALLOW_PRIVATE_NETWORKS"}
    log = tmp_path / "serve.log"
    port = free_port()
    with background("serve", "--port", str(port), "--demo", "--demo-port", "0", env=env, log=log) as proc:
        wait_for_line(log, "MEDIABEAT_CRAWLER_ALLOW_PRIVATE_NETWORKS=true", proc)
        wait_for_line(log, f"dashboard: http://127.0.0.1:{port}/app/ (sign in", proc)
        site = wait_for_line(log, "demo: the local news site is on", proc).split(" on ")[1].split("/ ")[0]
        assert httpx.get(f"{site}/feeds.opml", timeout=10).status_code == 200
        deadline = time.monotonic() + 60
        articles: list[dict[str, object]] = []
        while time.monotonic() < deadline and not articles:
            listed = mediabeat("articles", "list", "--org", DEMO_ORG, "--json", env=env)
            assert listed.returncode == 0, listed.stderr
            data = json.loads(listed.stdout)
            articles = data if isinstance(data, list) else next(v for v in data.values() if isinstance(v, list))
            time.sleep(1)
        assert articles, log.read_text()[-3000:]
        assert all(str(a["url"]).startswith(site + "/") for a in articles)
        assert any(len(str(a.get("text") or "")) > 300 for a in articles)
        done = wait_for_line(log, "demo: first fetch and crawl done", proc, within=120)
        assert int(done.split(", ")[1].split()[0]) >= len(articles)
    output = log.read_text(errors="replace")
    assert "Traceback" not in output and "ERROR" not in output, output[-3000:]
    removed = mediabeat("demo", "remove", env=env)
    assert removed.returncode == 0 and "removed the demo organisation with 12 feeds" in removed.stdout
    listed = mediabeat("articles", "list", "--json", env=env)
    assert listed.returncode == 0
    assert DEMO_ORG not in listed.stdout
