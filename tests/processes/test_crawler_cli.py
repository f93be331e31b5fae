"""The crawler's CLI as a user runs it (orgs, feeds, OPML, jobs, articles), and a worker killed mid-batch."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mediabeat.crawler.urls import url_hash
from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.jobs import JobStore, NewJob
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.tasks.base import SkipRun
from tests.crawler_helpers import ctx, handlers
from tests.loopback import LoopbackServer, Route
from tests.processes.harness import mediabeat, mediabeat_in_process


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
@pytest.mark.parametrize("backend", ["sqlite"])  # the commands' queries are covered on both backends by the store tests
def test_orgs_feeds_opml_jobs_articles(env: dict[str, str], tmp_path: Path, site: LoopbackServer) -> None:
    # Two commands run as processes of their own; the rest in this process (harness.mediabeat_in_process).
    created = mediabeat("orgs", "create", "desk", env=env)
    assert created.returncode == 0 and "created organisation 'desk'" in created.stdout, created.stderr
    again = mediabeat("orgs", "create", "desk", env=env)
    assert again.returncode == 1 and again.stderr.strip() == "error: organisation 'desk' already exists"
    missing = mediabeat_in_process("feeds", "add", "http://127.0.0.1/x.xml", "--org", "nope", env=env)
    assert missing.returncode == 2 and "no organisation named 'nope'" in missing.stderr
    bad = mediabeat_in_process("feeds", "add", "ftp://127.0.0.1/x", "--org", "desk", env=env)
    assert bad.returncode == 2 and "not an http(s) URL" in bad.stderr

    feed_url = site.url("/feed.xml")
    site.routes["/feed.xml"] = Route(
        body=(
            f'<rss version="2.0"><channel><title>Desk</title>'
            f"<item><link>{site.url('/a1')}</link></item><item><link>{site.url('/a2')}#x</link></item>"
            f"</channel></rss>"
        ).encode(),
        headers={"Content-Type": "application/rss+xml"},
    )
    article = b"<html lang='en'><head><title>A story</title></head><body><article><h1>A story</h1>"
    article += b"<p>This is the story of a test page with enough words to count as an article body.</p>" * 8
    site.routes["/a1"] = Route(body=article + b"</article></body></html>", headers={"Content-Type": "text/html"})
    site.routes["/a2"] = Route(status=404)
    assert "added feed" in ok("feeds", "add", feed_url, "--org", "desk", env=env)
    assert "already has this feed" in ok("feeds", "add", feed_url, "--org", "desk", env=env)

    opml = tmp_path / "feeds.opml"
    opml.write_text(
        f'<opml version="2.0"><body><outline text="Same" xmlUrl="{feed_url}"/>'
        f'<outline text="Other" xmlUrl="{site.url("/other.xml")}"/><outline text="Bad" xmlUrl="gopher://x/"/>'
        f"</body></opml>"
    )
    imported = json.loads(ok("feeds", "import", str(opml), "--org", "desk", "--json", env=env))
    assert imported == {"in_file": 3, "added": 1, "already_there": 1, "invalid": ["gopher://x/"]}
    broken = tmp_path / "broken.opml"
    broken.write_text("<opml><body>")
    refused = mediabeat("feeds", "import", str(broken), "--org", "desk", env=env)
    assert (
        refused.returncode == 2
        and "the OPML file cannot be read: the file ends before" in refused.stderr
        and "Traceback" not in refused.stderr
    )

    exported = ok("feeds", "export", "--org", "desk", env=env)
    assert feed_url in exported and site.url("/other.xml") in exported and exported.startswith("<?xml")

    feeds = json.loads(ok("feeds", "list", "--json", env=env))
    assert len(feeds) == 2
    assert {"url", "active", "last_status", "last_fetched_at", "consecutive_failures", "next_fetch_at"} <= feeds[
        0
    ].keys()
    other = next(f for f in feeds if f["url"].endswith("/other.xml"))
    assert "disabled" in ok("feeds", "disable", str(other["id"]), env=env)
    assert mediabeat_in_process("feeds", "enable", "9999", env=env).returncode == 2

    run = json.loads(ok("tasks", "run", "hourly-rss-fetch", "--json", env=env))
    assert run["status"] == "succeeded" and run["result"]["fetched"] == 1 and run["result"]["jobs_created"] == 2
    jobs = json.loads(ok("jobs", "list", "--json", env=env))
    assert sorted(j["url"] for j in jobs) == [site.url("/a1"), site.url("/a2")]
    assert all(j["status"] == "queued" and j["priority"] == 0 for j in jobs)
    desk = next(f for f in feeds if f["url"] == feed_url)
    assert f"feed {desk['id']} has priority 6" in ok("feeds", "priority", str(desk["id"]), "6", env=env)
    assert {j["priority"] for j in json.loads(ok("jobs", "list", "--json", env=env))} == {6}  # queued jobs follow
    too_high = mediabeat_in_process("feeds", "priority", str(desk["id"]), "10", env=env)
    assert too_high.returncode == 2 and "must be at most 9" in too_high.stderr
    assert "Traceback" not in too_high.stderr
    assert mediabeat_in_process("feeds", "priority", "9999", "1", env=env).returncode == 2
    crawl = json.loads(ok("tasks", "run", "crawl-queue", "--json", env=env))
    assert crawl["status"] == "succeeded" and (crawl["result"]["succeeded"], crawl["result"]["failed"]) == (1, 1)
    failed = json.loads(ok("jobs", "list", "--status", "failed", "--json", env=env))
    assert [j["url"] for j in failed] == [site.url("/a2")] and "404" in failed[0]["last_error"]
    assert "queued 1 failed job again" in ok("jobs", "retry", "--failed", env=env)
    assert mediabeat_in_process("jobs", "list", "--status", "bogus", env=env).returncode == 2

    articles = json.loads(ok("articles", "list", "--org", "desk", "--limit", "5", "--json", env=env))
    assert len(articles) == 1 and articles[0]["url"] == site.url("/a1")
    assert articles[0]["title"] == "A story" and "story of a test page" in articles[0]["text"]
    assert "A story" in ok("articles", "list", env=env)
    listed = json.loads(ok("orgs", "list", "--json", env=env))
    assert [(o["name"], o["feeds"]) for o in listed] == [("desk", 2)]
    assert "deleted" in ok("orgs", "delete", "desk", "--yes", env=env)
    assert json.loads(ok("feeds", "list", "--json", env=env)) == []


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.xdist_group("crawler-kill")
async def test_a_worker_killed_mid_batch_loses_no_job(db: Database, env: dict[str, str], site: LoopbackServer) -> None:
    site.routes["/robots.txt"] = Route(status=404)
    page = b"<html lang='en'><body><article><h1>Story</h1>" + b"<p>Plenty of words in this paragraph.</p>" * 20
    urls = []
    for i in range(12):
        site.routes[f"/p{i}"] = Route(
            body=page + b"</article></body></html>", headers={"Content-Type": "text/html"}, delay=0.4
        )
        urls.append(site.url(f"/p{i}"))
    now = datetime.now(UTC)
    org = await OrgStore(db).create("desk", now=now)
    store = JobStore(db)
    await store.enqueue([NewJob(org.id, None, u, url_hash(u)) for u in urls], now=now)

    worker = subprocess.Popen(
        [sys.executable, "-m", "mediabeat", "tasks", "run", "crawl-queue"],
        env={**env, "MEDIABEAT_CRAWL_CONCURRENCY": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its extraction workers die with it
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            counts = await store.counts_by_status()
            if counts.get("succeeded", 0) >= 2:
                break
            assert worker.poll() is None, "the worker ended before it could be killed"
            await asyncio.sleep(0.05)
        os.killpg(worker.pid, signal.SIGKILL)
    finally:
        worker.wait(timeout=30)
    counts = await store.counts_by_status()
    assert counts.get("succeeded", 0) >= 2 and counts.get("running", 0) >= 1, counts
    in_flight = {j.id for j in await store.list_jobs(status="running")}

    _, crawl = handlers(db, __import__("mediabeat.clock", fromlist=["SystemClock"]).SystemClock())
    try:
        with pytest.raises(SkipRun):  # the dead worker's leases still hold; nothing else is due
            await crawl(ctx(datetime.now(UTC) - timedelta(minutes=1)))
        later = datetime.now(UTC) + timedelta(minutes=16)  # past the 15-minute lease
        result = await crawl(ctx(later))
        assert result["released_expired"] == len(in_flight)
    finally:
        await crawl.aclose()
    jobs = await store.list_jobs(limit=100)
    assert [j.status for j in jobs] == ["succeeded"] * 12
    assert all(j.attempts == (2 if j.id in in_flight else 1) for j in jobs)
    articles = await ArticleStore(db).list(limit=100)
    assert sorted(a.url for a in articles) == sorted(urls)
    assert len({j.article_id for j in jobs}) == 12
