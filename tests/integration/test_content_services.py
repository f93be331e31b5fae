"""The content services behind both doors: the CLI and the API apply one rule set and leave one audit trail.

The CLI runs in-process (Typer's CliRunner, in a thread: it starts its own event loop) against the same
database as the API app, and the audit record is read back through GET /api/v1/audit.
"""

from __future__ import annotations

import asyncio
import getpass
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mediabeat.cli import app as cli_app
from mediabeat.cli.common import CliError
from mediabeat.cli.demo_cmd import DEMO_ORG, DEMO_SITE, ensure_demo_org
from mediabeat.db.stores.jobs import JobStore, NewJob
from mediabeat.domain.content import SYSTEM
from mediabeat.domain.ids import MAX_ID
from tests.integration.api_fixtures import ADMIN_EMAIL, ApiEnv, assert_error, make_env
from tests.integration.test_dashboard_pages import signed_in

CLI_ACTOR = f"cli:{getpass.getuser()}"
LONG_URL = "https://long.example.org/" + "x" * 2100
SPACED_URL = "https://news.example.org/a feed.xml"


def opml(*urls: str) -> bytes:
    outlines = "".join(f'<outline text="f{i}" xmlUrl="{url}"/>' for i, url in enumerate(urls))
    return f'<?xml version="1.0"?><opml version="2.0"><head/><body>{outlines}</body></opml>'.encode()


@dataclass
class Ran:
    exit_code: int
    stdout: str
    stderr: str


async def cli(api: ApiEnv, *args: str, stdin: str | None = None, **env: str) -> Ran:
    """Run `mediabeat ARGS` in-process on the API's database; a CliError ends it as `main` would."""
    environ = {"MEDIABEAT_DATABASE_URL": api.services.settings.database_url, "COLUMNS": "200", **env}
    runner = CliRunner()
    result = await asyncio.to_thread(runner.invoke, cli_app, list(args), input=stdin, env=environ)
    if isinstance(result.exception, CliError):
        return Ran(result.exception.exit_code, result.stdout, f"error: {result.exception}")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def ok(result: Ran) -> str:
    assert result.exit_code == 0, result
    return result.stdout


async def audit(api: ApiEnv, **params: Any) -> list[dict[str, Any]]:
    async with api.admin() as client:
        response = await client.get("/api/v1/audit", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_malformed_opml_file_is_told_in_words_with_its_line_through_the_cli_and_the_api(
    api: ApiEnv, tmp_path: Path
) -> None:
    # An <outline> left open: lxml says "Opening and ending tag mismatch: outline line 4 and body, line 5, column 8".
    document = (
        b'<?xml version="1.0"?>\n<opml version="2.0">\n<head><title>Reader</title></head><body>\n'
        b'<outline text="One" xmlUrl="https://one.example.org/rss">\n</body>\n</opml>\n'
    )
    path = tmp_path / "reader.opml"
    path.write_bytes(document)
    expected = (
        "the OPML file cannot be read: an end tag does not match the element it closes (one above it left open?), "
        "on line 5"
    )
    refused = await cli(api, "feeds", "import", str(path), "--org", "api-org")
    assert (refused.exit_code, refused.stderr) == (2, f"error: {path}: {expected}"), refused
    async with api.member() as client:
        response = await client.post("/api/v1/feeds/import", content=document)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == {
        "code": "invalid_opml",
        "message": expected,
        "details": [{"field": "body", "message": expected}],
    }
    assert await api.services.content.feeds.list(org_id=api.org_id) == []


async def test_opml_import_follows_the_same_rules_through_the_cli_and_the_api(api: ApiEnv, tmp_path: Path) -> None:
    document = opml("https://good.example.org/rss", LONG_URL, SPACED_URL)
    path = tmp_path / "feeds.opml"
    path.write_bytes(document)

    printed = ok(await cli(api, "feeds", "import", str(path), "--org", "api-org", "--json"))
    async with api.admin() as client:
        response = await client.post(f"/api/v1/feeds/import?org_id={api.other_org_id}", content=document)
    assert response.status_code == 200, response.text

    through_cli = {f.url for f in await api.services.content.feeds.list(org_id=api.org_id)}
    through_api = {f.url for f in await api.services.content.feeds.list(org_id=api.other_org_id)}
    assert through_cli == through_api == {"https://good.example.org/rss"}
    assert '"added": 1' in printed and response.json()["added"] == 1
    events = await audit(api, action="feed.import")
    assert {e["actor"] for e in events} == {ADMIN_EMAIL, CLI_ACTOR}
    assert all(e["details"]["added"] == 1 and len(e["details"]["skipped"]) == 2 for e in events)


async def test_one_feed_url_rule_for_feeds_add_in_the_cli_and_the_api(api: ApiEnv) -> None:
    for url in (LONG_URL, SPACED_URL):
        refused = await cli(api, "feeds", "add", url, "--org", "api-org")
        assert refused.exit_code == 2 and "feed URL" in refused.stderr, refused.output
        async with api.admin() as client:
            response = await client.post("/api/v1/feeds", json={"url": url, "org_id": api.org_id, "check": False})
        assert_error(response, 422)
    assert await api.services.content.feeds.list() == []


async def test_every_cli_mutation_leaves_an_audit_record_with_the_os_user(api: ApiEnv) -> None:
    ok(await cli(api, "orgs", "create", "desk"))
    ok(await cli(api, "feeds", "add", "https://desk.example.org/rss", "--org", "desk", "--no-check"))
    feed_id = str((await api.services.content.feeds.list())[0].id)
    for args in (["disable", feed_id], ["enable", feed_id], ["priority", feed_id, "3"]):
        ok(await cli(api, "feeds", *args))
    ok(await cli(api, "feeds", "delete", feed_id))
    ok(await cli(api, "jobs", "retry", "--failed"))
    password = "a-long-enough-password-1\n"
    ok(await cli(api, "users", "create", "ed@example.test", "--org", "desk", "--password-stdin", stdin=password))
    ok(await cli(api, "users", "set-password", "ed@example.test", "--password-stdin", stdin="another-long-one-22\n"))
    ok(await cli(api, "tokens", "create", "ed@example.test", "--name", "script"))
    token_id = str((await api.services.content.accounts.list_tokens())[-1].id)
    ok(await cli(api, "tokens", "revoke", token_id))
    ok(await cli(api, "orgs", "delete", "desk", "--yes"))
    await ensure_demo_org(api.services, base_url="http://127.0.0.1:1", config=DEMO_SITE, actor=SYSTEM)
    ok(await cli(api, "demo", "remove"))

    events = await audit(api, actor=CLI_ACTOR)
    assert sorted(e["action"] for e in events) == sorted(
        [
            "org.create",
            "feed.create",
            "feed.disable",
            "feed.enable",
            "feed.priority",
            "feed.delete",
            "jobs.retry",
            "user.create",
            "user.update",
            "token.create",
            "token.revoke",
            "org.delete",
            "org.delete",  # demo remove
        ]
    )
    demo_removed = [e for e in events if e["action"] == "org.delete" and e["details"]["name"] == DEMO_ORG]
    assert len(demo_removed) == 1


OUT_OF_RANGE = [str(MAX_ID), str(MAX_ID + 1), "-1", "0", "9" * 40]


@pytest.mark.parametrize("bad", OUT_OF_RANGE)
async def test_out_of_range_ids_in_content_paths_are_404_or_422_never_500(api: ApiEnv, bad: str) -> None:
    requests: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/api/v1/feeds/{bad}", None),
        ("PATCH", f"/api/v1/feeds/{bad}", {"active": False}),
        ("DELETE", f"/api/v1/feeds/{bad}", None),
        ("GET", f"/api/v1/articles/{bad}", None),
        ("GET", f"/api/v1/orgs/{bad}", None),
        ("DELETE", f"/api/v1/orgs/{bad}", None),
        ("GET", f"/api/v1/users/{bad}", None),
        ("PATCH", f"/api/v1/users/{bad}", {"is_active": True}),
        ("DELETE", f"/api/v1/tokens/{bad}", None),
        ("POST", f"/api/v1/jobs/{bad}/retry", None),
        ("GET", f"/api/v1/feeds?org_id={bad}", None),
        ("GET", f"/api/v1/articles?feed_id={bad}", None),
        ("GET", f"/api/v1/articles?org_id={bad}", None),
        ("GET", f"/api/v1/jobs?org_id={bad}", None),
        ("GET", f"/api/v1/tokens?user_id={bad}", None),
        ("GET", f"/api/v1/feeds/export?org_id={bad}", None),
    ]
    async with api.admin() as client:
        for method, path, body in requests:
            response = await client.request(method, path, json=body)
            if bad == str(MAX_ID) and response.status_code == 200:  # in range: a filter that matches nothing
                assert path.startswith(("/api/v1/jobs?", "/api/v1/tokens?")), (method, path, response.text)
                continue
            assert response.status_code in (404, 422), (method, path, response.status_code, response.text)
            assert_error(response, response.status_code)


async def test_retrying_the_largest_job_id_is_a_404_and_a_job_that_is_not_failed_a_409(api: ApiEnv) -> None:
    store = JobStore(api.services.db)
    await store.enqueue(
        [NewJob(org_id=api.org_id, feed_id=None, url="https://a.example.org/1", url_hash="h1")],
        now=api.services.clock.now(),
    )
    queued = (await store.list_jobs())[0]
    async with api.admin() as client:
        assert_error(await client.post(f"/api/v1/jobs/{MAX_ID}/retry"), 404, "not_found")
        assert_error(await client.post(f"/api/v1/jobs/{queued.id}/retry"), 409, "not_failed")
        listed = await client.post("/api/v1/jobs/retry", json={"ids": [MAX_ID]})
    assert listed.status_code == 200 and listed.json() == {"requeued": 0, "not_found": [MAX_ID], "not_failed": []}
    missing = await cli(api, "jobs", "retry", str(MAX_ID + 1))
    assert missing.exit_code == 2 and missing.stdout.startswith("queued 0 failed jobs")
    assert missing.stderr == f"error: no crawl job with id {MAX_ID + 1}"
    not_failed = await cli(api, "jobs", "retry", str(queued.id))
    assert not_failed.exit_code == 1 and not_failed.stderr == f"error: crawl job {queued.id} is queued, not failed"
    both = await cli(api, "jobs", "retry", str(queued.id), str(MAX_ID + 1))
    assert both.exit_code == 2  # the id that names nothing decides: the command line must change
    assert both.stderr == f"error: crawl job {queued.id} is queued, not failed; no crawl job with id {MAX_ID + 1}"


@pytest.mark.parametrize("path", ["/app/articles/%C2%B2", f"/app/articles/{MAX_ID + 1}", "/app/articles/0"])
async def test_article_pages_with_ids_that_name_no_row_are_404_pages(api: ApiEnv, path: str) -> None:
    async with signed_in(api) as client:
        response = await client.get(path)
    assert response.status_code == 404 and "text/html" in response.headers["content-type"], response.text


async def test_an_opml_import_listing_more_feeds_than_the_cap_is_refused_by_both_doors(
    database_url: str, tmp_path: Path
) -> None:
    env = await make_env(database_url, opml_max_feeds=3)
    try:
        document = opml(*(f"https://f{i}.example.org/rss" for i in range(4)))
        async with env.admin() as client:
            response = await client.post(f"/api/v1/feeds/import?org_id={env.org_id}", content=document)
        assert "at most 3" in assert_error(response, 413, "too_large")["message"]
        path = tmp_path / "big.opml"
        path.write_bytes(document)
        refused = await cli(env, "feeds", "import", str(path), "--org", "api-org", MEDIABEAT_OPML_MAX_FEEDS="3")
        assert refused.exit_code == 2 and "at most 3" in refused.stderr, refused.output
        assert await env.services.content.feeds.list() == []
        fits = opml(*(f"https://f{i}.example.org/rss" for i in range(3)))
        async with env.admin() as client:
            accepted = await client.post(f"/api/v1/feeds/import?org_id={env.org_id}", content=fits)
        assert accepted.status_code == 200 and accepted.json()["added"] == 3
    finally:
        await env.services.close()


async def test_opml_import_writes_in_batches(api: ApiEnv) -> None:
    feeds = api.services.content.feeds
    urls = [(f"https://b{i}.example.org/rss", None) for i in range(7)]
    added = await feeds.store.add_many(api.org_id, urls, now=api.services.clock.now(), batch_size=3)
    assert [new for _, new in added] == [True] * 7
    again = await feeds.store.add_many(api.org_id, urls[::-1], now=api.services.clock.now(), batch_size=2)
    assert [f.url for f, new in again if not new] == [u for u, _ in urls[::-1]]


async def test_a_batch_retry_says_which_ids_it_did_not_queue_and_why(api: ApiEnv) -> None:
    store = JobStore(api.services.db)
    now = api.services.clock.now()
    await store.enqueue(
        [NewJob(org_id=api.org_id, feed_id=None, url=f"https://a.example.org/{i}", url_hash=f"h{i}") for i in range(3)],
        now=now,
    )
    failing, queued, done = sorted(j.id for j in await store.list_jobs())
    claimed = await store.claim(worker="w", now=now, limit=3, lease=timedelta(minutes=5))
    assert {j.id for j in claimed} == {failing, queued, done}
    await store.fail(failing, worker="w", now=now, error="boom")
    await store.complete(done, worker="w", now=now, article_id=None)
    await store.release([queued], worker="w", now=now)
    async with api.admin() as client:
        response = await client.post("/api/v1/jobs/retry", json={"ids": [done, MAX_ID, failing, queued, failing]})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "requeued": 1,
        "not_found": [MAX_ID],
        "not_failed": [{"id": queued, "status": "queued"}, {"id": done, "status": "succeeded"}],
    }
    assert (await store.get(failing)).status == "queued"  # type: ignore[union-attr]
    async with api.admin() as client:  # again: the job is queued now, not failed
        again = (await client.post("/api/v1/jobs/retry", json={"ids": [failing]})).json()
    assert again == {"requeued": 0, "not_found": [], "not_failed": [{"id": failing, "status": "queued"}]}
