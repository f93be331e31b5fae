"""The dashboard pages over HTTP: who may see them, what they show, and that user text is escaped."""

from __future__ import annotations

import contextlib
import html as entities
import re
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from mediabeat.crawler.urls import url_hash
from mediabeat.db.stores.articles import ArticleStore, NewArticle
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import JobStore, NewJob
from mediabeat.scheduler.service import NewTask
from mediabeat.testing import FailingHandler, RecordingHandler
from mediabeat.web.dashboard.content_pages import ARTICLES_PAGE
from tests.integration.api_fixtures import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    MEMBER_EMAIL,
    MEMBER_PASSWORD,
    ApiEnv,
    assert_error,
)

PAGES = [
    "/app/admin/scheduler",
    "/app/admin/scheduler/runs",
    "/app/admin/scheduler/tasks/nightly-cleanup",
    "/app/admin/scheduler/new",
    "/app/admin/feeds",
    "/app/admin/jobs",
]
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@contextlib.asynccontextmanager
async def signed_in(
    api: ApiEnv, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
) -> AsyncIterator[httpx.AsyncClient]:
    async with api.client() as client:
        response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        yield client


def stat(html: str, key: str) -> int:
    found = re.search(rf'data-stat="{key}">(\d+)<', html)
    assert found, f"no {key} card"
    return int(found.group(1))


async def test_anonymous_visitors_are_sent_to_sign_in_with_the_page_to_return_to(api: ApiEnv) -> None:
    async with api.client() as client:
        for path in PAGES:
            response = await client.get(path)
            assert response.status_code == 303
            assert response.headers["location"] == f"/login?next={quote(path, safe='/')}"


async def test_members_get_a_403_page_not_the_dashboard(api: ApiEnv) -> None:
    async with signed_in(api, MEMBER_EMAIL, MEMBER_PASSWORD) as client:
        for path in PAGES:
            response = await client.get(path)
            assert response.status_code == 403, path
            assert "text/html" in response.headers["content-type"]
            assert "members may not" in response.text and "this needs an admin" in response.text
            assert 'data-stat="total_tasks"' not in response.text


async def test_an_expired_session_cookie_leads_to_sign_in_not_a_json_error(api: ApiEnv) -> None:
    async with api.client(cookies={"mediabeat_session": "not-a-session"}) as client:
        response = await client.get("/app/admin/scheduler?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/app/admin/scheduler%3Fx%3D1"


async def test_an_api_token_does_not_open_the_pages(api: ApiEnv) -> None:
    async with api.admin() as client:
        response = await client.get("/app/admin/scheduler")
    assert response.status_code == 303


async def test_pages_carry_a_strict_content_security_policy_and_refuse_framing(api: ApiEnv) -> None:
    async with signed_in(api) as client:
        for path in [*PAGES, "/login"]:
            response = await client.get(path, follow_redirects=False)
            if path == "/login":
                assert response.status_code == 303  # an admin is sent on
                response = await api.client().get("/login")
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
            assert "frame-ancestors 'none'" in csp
            assert response.headers["x-frame-options"] == "DENY"
            assert "<script>" not in response.text and " style=" not in response.text, path


async def test_the_overview_shows_six_cards_with_the_stats_and_every_task(api: ApiEnv) -> None:
    api.services.registry.register("recording", RecordingHandler())
    api.services.registry.register("exploding", FailingHandler("the feed server exploded"))
    scheduler = api.services.scheduler
    await scheduler.create_task(NewTask(name="fine", handler="recording", cron="*/5 * * * *"))
    await scheduler.create_task(NewTask(name="broken", handler="exploding", cron="@daily", enabled=False))
    for name in ("fine", "fine", "broken"):
        await scheduler.run_now_and_wait(name)
    stats = await scheduler.stats()
    async with signed_in(api) as client:
        response = await client.get("/app/admin/scheduler")
    html = response.text
    assert response.status_code == 200
    for label in ("Total Tasks", "Enabled", "Runs", "Success", "Failed", "Last 24h"):
        assert f'<span class="card-label">{label}</span>' in html
    assert stat(html, "total_tasks") == stats.total_tasks
    assert stat(html, "enabled_tasks") == stats.enabled_tasks == stats.total_tasks - 1
    assert stat(html, "total_runs") == stats.total_runs
    assert stat(html, "succeeded_runs") == stats.succeeded_runs >= 2
    assert stat(html, "failed_runs") == stats.failed_runs >= 1
    assert stat(html, "runs_last_24h") == stats.runs_last_24h
    assert 'data-task-name="fine"' in html and 'data-task-name="broken"' in html
    assert "Every 5 minutes" in html
    assert "the feed server exploded" in html and 'id="failing-alert"' in html
    row = html[html.index('data-task-name="broken"') :]
    row = row[: row.index("</tr>")]
    assert 'aria-checked="false"' in row and "badge-bad" in row and "paused" in row
    assert row.count('class="tick tick-bad"') == 1


async def test_user_text_is_escaped_everywhere_it_is_shown(api: ApiEnv) -> None:
    api.services.registry.register("hostile", FailingHandler(HOSTILE))
    task = await api.services.scheduler.create_task(
        NewTask(name="hostile", handler="hostile", cron="@hourly", description=HOSTILE)
    )
    run = await api.services.scheduler.run_now_and_wait("hostile", triggered_by=HOSTILE)
    async with api.admin() as admin:
        await admin.post(
            "/api/v1/feeds", json={"url": "https://news.example.org/<b>rss", "title": HOSTILE, "check": False}
        )
    async with signed_in(api) as client:
        pages = [
            "/app/admin/scheduler",
            f"/app/admin/scheduler/tasks/{task.name}",
            "/app/admin/scheduler/runs",
            f"/app/admin/scheduler/runs/{run.id}",
            "/app/admin/feeds",
        ]
        for path in pages:
            html = (await client.get(path)).text
            assert "<script>alert" not in html and "<img src=x" not in html, path
            assert "&lt;script&gt;alert(" in html or "&lt;img src=x" in html, path


async def test_run_history_filters_and_pages_with_a_cursor(api: ApiEnv) -> None:
    api.services.registry.register("recording", RecordingHandler())
    api.services.registry.register("exploding", FailingHandler("boom: upstream said 503"))
    scheduler = api.services.scheduler
    await scheduler.create_task(NewTask(name="fine", handler="recording", cron="@hourly"))
    await scheduler.create_task(NewTask(name="broken", handler="exploding", cron="@hourly"))
    ids = [(await scheduler.run_now_and_wait(n)).id for n in ("fine", "broken", "fine")]
    async with signed_in(api) as client:
        failed = (await client.get("/app/admin/scheduler/runs", params={"status": "failed", "task": "broken"})).text
        assert f'href="/app/admin/scheduler/runs/{ids[1]}"' in failed
        assert f'href="/app/admin/scheduler/runs/{ids[0]}"' not in failed
        assert "boom: upstream said 503" in failed
        manual = (await client.get("/app/admin/scheduler/runs", params={"trigger": "manual", "task": "fine"})).text
        assert f"runs/{ids[0]}" in manual and f"runs/{ids[2]}" in manual
        older = (await client.get("/app/admin/scheduler/runs", params={"cursor": str(ids[2])})).text
        assert f"runs/{ids[2]}" not in older and f"runs/{ids[1]}" in older
        future = (await client.get("/app/admin/scheduler/runs", params={"since": "2999-01-01T00:00"})).text
        assert "No runs match these filters" in future
        bad = await client.get("/app/admin/scheduler/runs", params={"since": "yesterday"})
        assert bad.status_code == 422 and "2026-01-31T14:00" in bad.text


@pytest.mark.parametrize(
    ("page", "field", "api_path"),
    [
        ("/app/admin/jobs", "status", "/api/v1/jobs"),
        ("/app/admin/scheduler/runs", "status", "/api/v1/scheduler/runs"),
        ("/app/admin/scheduler/runs", "trigger", "/api/v1/scheduler/runs"),
        ("/app/admin/feeds", "state", None),
        ("/app/articles", "copies", None),
    ],
)
async def test_a_filter_value_that_is_not_allowed_is_a_422_page_naming_the_allowed_ones(
    api: ApiEnv, page: str, field: str, api_path: str | None
) -> None:
    allowed = {
        ("/app/admin/jobs", "status"): "queued, running, succeeded, failed",
        ("/app/admin/scheduler/runs", "status"): "running, succeeded, failed, timed_out, skipped, abandoned, "
        "cancelled, queued",
        ("/app/admin/scheduler/runs", "trigger"): "schedule, manual, dependency, retry",
        ("/app/admin/feeds", "state"): "active, disabled, failing",
        ("/app/articles", "copies"): "0, 1",
    }[(page, field)]
    expected = f"{field}: must be one of {allowed} (got 'bogus')"
    async with signed_in(api) as client:
        refused = await client.get(page, params={field: "bogus"})
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("text/html")
        assert f"The address has a value this page cannot use ({expected})." in html_text(refused.text)
        blank = await client.get(page, params={field: ""})  # the filter form's "all"
        assert blank.status_code == 200, blank.text
        if api_path is not None:  # the API says the same of the same value
            error = assert_error(await client.get(api_path, params={field: "bogus"}), 422)
            assert error["details"][0]["message"] == expected.removeprefix(f"{field}: ")


def html_text(html: str) -> str:
    """The page's text as a person reads it: tags removed, entities decoded, spaces collapsed."""
    return " ".join(entities.unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def test_run_detail_shows_the_error_traceback_and_who_started_it(api: ApiEnv) -> None:
    api.services.registry.register("exploding", FailingHandler("the feed server exploded"))
    await api.services.scheduler.create_task(NewTask(name="broken", handler="exploding", cron="@hourly"))
    run = await api.services.scheduler.run_now_and_wait("broken", triggered_by=ADMIN_EMAIL)
    async with signed_in(api) as client:
        html = (await client.get(f"/app/admin/scheduler/runs/{run.id}")).text
        missing = await client.get("/app/admin/scheduler/runs/999999")
    assert "Why it failed" in html and "RuntimeError: the feed server exploded" in html
    assert "Traceback (most recent call last)" in html
    assert ADMIN_EMAIL in html and "badge-bad" in html
    assert missing.status_code == 404 and "There is no run 999999" in missing.text


async def test_task_page_shows_settings_the_next_ten_fire_times_and_a_duration_chart(api: ApiEnv) -> None:
    api.services.registry.register("recording", RecordingHandler())
    api.services.registry.register("exploding", FailingHandler())
    scheduler = api.services.scheduler
    await scheduler.create_task(
        NewTask(name="report", handler="recording", cron="30 6 * * 1-5", timezone="Europe/Berlin")
    )
    for _ in range(3):
        await scheduler.run_now_and_wait("report")
    async with signed_in(api) as client:
        html = (await client.get("/app/admin/scheduler/tasks/report")).text
        missing = await client.get("/app/admin/scheduler/tasks/nope")
    assert 'value="30 6 * * 1-5"' in html and 'value="Europe/Berlin"' in html
    upcoming = html[html.index('id="upcoming"') :]
    upcoming = upcoming[: upcoming.index("</ol>")]
    assert (upcoming.count("<li>") == 10 and "CET" in upcoming) or "CEST" in upcoming
    assert html.count('class="bar bar-good"') == 3
    assert "<svg" in html and 'role="img"' in html
    assert missing.status_code == 404 and "There is no task called" in missing.text


async def test_new_task_page_offers_every_handler_the_presets_and_the_tasks_to_chain_after(api: ApiEnv) -> None:
    async with signed_in(api) as client:
        html = (await client.get("/app/admin/scheduler/new")).text
    assert 'id="new-task-form"' in html
    handlers = re.findall(r'<option value="([a-z_]+)" data-description="([^"]*)">', html)
    assert [name for name, _ in handlers] == api.services.scheduler.handler_names()
    assert dict(handlers)["nightly_cleanup"].startswith("Delete crawl jobs and run history")
    after = html[html.index('id="t-after"') :]
    after = after[: after.index("</select>")]
    assert " selected" not in after
    assert all(f'<option value="{t.name}">' in after for t in await api.services.scheduler.list_tasks())
    assert 'data-cron="0 9 * * 1-5"' in html and 'value="0 * * * *"' in html and "Every hour" in html


async def test_task_page_shows_its_chain_in_the_settings(api: ApiEnv) -> None:
    api.services.registry.register("recording", RecordingHandler())
    scheduler = api.services.scheduler
    await scheduler.create_task(NewTask(name="first", handler="recording", cron="@daily"))
    await scheduler.create_task(NewTask(name="second", handler="recording", cron="@daily", after=("first",)))
    async with signed_in(api) as client:
        second = (await client.get("/app/admin/scheduler/tasks/second")).text
        first = (await client.get("/app/admin/scheduler/tasks/first")).text
    assert '<option value="first" selected>first</option>' in second
    assert 'runs after <a href="/app/admin/scheduler/tasks/first">first</a> succeeds' in second
    assert '<option value="second">second</option>' in first and '<span id="t-upstream" hidden>' in first
    assert (
        'then starts <a href="/app/admin/scheduler/tasks/second">second</a> <span class="muted">(on success)' in first
    )


async def test_sign_in_page_only_returns_to_local_paths(api: ApiEnv) -> None:
    async with api.client() as client:
        evil = (await client.get("/login", params={"next": "//evil.example/x"})).text
        local = (await client.get("/login", params={"next": "/app/admin/jobs?status=failed"})).text
        for hostile in ("/%09/evil.example/x", "/%0d%0a/evil.example/x", "/%5Cevil.example"):
            page = (await client.get(f"/login?next={hostile}")).text
            assert 'data-next="/app/admin/scheduler"' in page, hostile
            assert "evil.example" not in page, hostile
    assert 'data-next="/app/admin/scheduler"' in evil
    assert 'data-next="/app/admin/jobs?status=failed"' in local
    async with signed_in(api) as client:
        response = await client.get("/login", params={"next": "/app/admin/feeds"})
    assert response.status_code == 303 and response.headers["location"] == "/app/admin/feeds"


async def test_feeds_and_jobs_pages_show_status_and_failures(api: ApiEnv) -> None:
    async with api.admin() as admin:
        created = await admin.post(
            "/api/v1/feeds", json={"url": "https://news.example.org/rss.xml", "org_id": api.org_id, "check": False}
        )
        assert created.status_code == 201, created.text
        await admin.patch(f"/api/v1/feeds/{created.json()['id']}", json={"priority": 3})
    async with signed_in(api) as client:
        feeds = (await client.get("/app/admin/feeds")).text
        jobs = (await client.get("/app/admin/jobs", params={"status": "failed"})).text
        await JobStore(api.services.db).enqueue(
            [NewJob(api.org_id, created.json()["id"], "https://news.example.org/a", "a" * 64, priority=3)],
            now=api.services.clock.now(),
        )
        queued = (await client.get("/app/admin/jobs", params={"status": "queued"})).text
    assert "https://news.example.org/rss.xml" in feeds and 'data-action="feed-toggle"' in feeds
    assert "api-org" in feeds
    assert 'data-current="3"' in feeds and '<option value="3" selected>3</option>' in feeds
    assert 'data-job-count="failed">0<' in jobs and "No failed jobs" in jobs
    assert "https://news.example.org/a" in queued and '<td data-label="Priority" class="num">3</td>' in queued


async def test_the_overview_lists_the_nodes_and_the_maintenance_leader(api: ApiEnv) -> None:
    async with signed_in(api) as client:
        html = (await client.get("/app/admin/scheduler")).text
        assert "No node has registered yet" in html

        cluster = api.services.cluster
        await cluster.register()
        await cluster.step()
        html = (await client.get("/app/admin/scheduler")).text
    row = re.search(rf'<tr data-node-id="{re.escape(cluster.node_id)}">(.*?)</tr>', html, re.S)
    assert row, "the registered node has no row"
    assert "maintenance leader" in row.group(1)
    assert 'data-status="succeeded">Running<' in row.group(1)
    await cluster.stop()


async def _article(api: ApiEnv, org_id: int, n: int, *, title: str, text: str = "First.\nSecond.") -> int:
    url = f"https://news.example.org/{org_id}/{n}"
    return await ArticleStore(api.services.db).save(
        NewArticle(
            org_id=org_id,
            feed_id=None,
            url=url,
            url_hash=url_hash(url),
            canonical_url=url,
            title=title,
            author="A. Writer",
            published_at=None,
            summary=None,
            text=text,
            language="en",
        ),
        now=api.services.clock.now(),
    )


async def test_members_read_their_own_organisations_articles_and_no_one_elses(api: ApiEnv) -> None:
    ours = [await _article(api, api.org_id, n, title=f"Ours number {n}") for n in range(ARTICLES_PAGE + 2)]
    theirs = await _article(api, api.other_org_id, 0, title="Theirs only")
    hostile = await _article(api, api.org_id, 99, title=HOSTILE, text=f"{HOSTILE}\nA second paragraph.")
    async with signed_in(api, MEMBER_EMAIL, MEMBER_PASSWORD) as client:
        first = await client.get("/app/articles")
        assert first.status_code == 200 and "33 articles collected from your organisation" in first.text
        assert "<script>" not in first.text and " style=" not in first.text  # the CSP forbids both
        assert "Theirs only" not in first.text and 'href="/app/admin/scheduler"' not in first.text
        older = re.search(r'rel="next" href="([^"]+)"', first.text)
        assert older, "a second page"
        second = await client.get("/app/articles" + older.group(1).replace("&amp;", "&"))
        listed = set(map(int, re.findall(r'data-article-id="(\d+)"', first.text + second.text)))
        assert listed == {*ours, hostile}
        reading = await client.get(f"/app/articles/{ours[0]}")
        assert reading.status_code == 200 and "<p>First.</p>" in reading.text and "<p>Second.</p>" in reading.text
        assert 'rel="noopener noreferrer nofollow"' in reading.text
        escaped = (await client.get(f"/app/articles/{hostile}")).text
        assert "<script>alert" not in escaped and "&lt;script&gt;alert(" in escaped
        for refused in (f"/app/articles/{theirs}", "/app/articles/not-a-number", "/app/articles/99999999999999999999"):
            response = await client.get(refused)
            assert response.status_code == 404 and "text/html" in response.headers["content-type"], refused
        # After signing in, a member goes to the articles, not to admin pages that would refuse them.
        assert (await client.get("/login", params={"next": "/app/articles"})).headers["location"] == "/app/articles"
        notice = await client.get("/login", params={"next": "/app/admin/feeds"})
        assert notice.status_code == 200 and 'href="/app/articles"' in notice.text
    async with signed_in(api) as admin:
        everything = (await admin.get("/app/articles")).text
        assert "Theirs only" in everything and "other-org" in everything
        only_theirs = (await admin.get("/app/articles", params={"org_id": api.other_org_id})).text
        assert "Theirs only" in only_theirs and "Ours number" not in only_theirs
        all_again = await admin.get("/app/articles", params={"org_id": ""})  # the filter's "All organisations"
        assert all_again.status_code == 200 and "Theirs only" in all_again.text
        assert (await admin.get(f"/app/articles/{theirs}")).status_code == 200


async def test_articles_are_searched_in_the_page_and_the_api(api: ApiEnv) -> None:
    tram = await _article(api, api.org_id, 1, title="Council approves the new TRAM line")
    await _article(api, api.org_id, 2, title="Harbour festival draws record crowds")
    percent = await _article(api, api.org_id, 3, title="Rents up 100% in a decade <b>bold</b>")
    await _article(api, api.other_org_id, 4, title="Another tram, in another organisation")
    async with signed_in(api, MEMBER_EMAIL, MEMBER_PASSWORD) as client:
        page = await client.get("/app/articles", params={"q": " tram "})
        assert page.status_code == 200 and "Articles matching “tram”" in page.text
        assert re.findall(r'data-article-id="(\d+)"', page.text) == [str(tram)]
        assert "<mark>TRAM</mark>" in page.text
        nothing = (await client.get("/app/articles", params={"q": "volcano"})).text
        assert "No article matches “volcano”." in nothing
        bold = (await client.get("/app/articles", params={"q": "bold"})).text
        assert "&lt;<mark>b</mark>&gt;" not in bold and "<mark>bold</mark>" in bold and "<b>bold</b>" not in bold
        bad = await client.get("/app/articles", params={"q": 'tram "line'})
        assert bad.status_code == 422 and "unbalanced quote at column 6" in bad.text
        # % and _ are not wildcards: "100%" is the word 100, and "_" has no word to search for.
        found = (await client.get("/api/v1/articles", params={"q": "100%"})).json()["items"]
        assert [a["id"] for a in found] == [percent]
        underscore = await client.get("/api/v1/articles", params={"q": "_"})
        assert underscore.status_code == 422 and "no words" in underscore.json()["error"]["message"]


async def test_members_manage_their_own_organisations_feeds_on_their_page(api: ApiEnv) -> None:
    feeds = FeedStore(api.services.db)
    now = api.services.clock.now()
    ours, _ = await feeds.add(api.org_id, "https://ours.example.org/rss.xml", now=now, title="Our wire")
    await feeds.add(api.other_org_id, "https://theirs.example.org/rss.xml", now=now, title="Their wire")
    async with signed_in(api, MEMBER_EMAIL, MEMBER_PASSWORD) as client:
        page = await client.get("/app/feeds")
        assert page.status_code == 200 and "Our wire" in page.text and "Their wire" not in page.text
        assert f'data-feed-id="{ours.id}"' in page.text
        # The forms post to the member's own organisation; priorities and other organisations are for admins.
        assert f'<input type="hidden" name="org_id" value="{api.org_id}">' in page.text
        assert 'data-action-change="feed-priority"' not in page.text and "other-org" not in page.text
        assert 'href="/app/feeds"' in page.text and 'href="/app/admin/jobs"' not in page.text
        assert (await client.get("/app/admin/feeds")).status_code == 403
    async with signed_in(api) as admin:
        sent = await admin.get("/app/feeds", params={"state": "failing"})
        assert sent.status_code == 303 and sent.headers["location"] == "/app/admin/feeds?state=failing"
    async with api.client() as anonymous:
        assert (await anonymous.get("/app/feeds")).headers["location"] == "/login?next=/app/feeds"


async def test_the_articles_page_asks_anonymous_visitors_to_sign_in(api: ApiEnv) -> None:
    async with api.client() as client:
        response = await client.get("/app/articles")
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/app/articles"
