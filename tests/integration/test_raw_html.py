"""Kept raw HTML: written by crawl-queue, compressed, removed by nightly-cleanup and re-extracted, on both backends."""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from mediabeat.cli import app as cli_app
from mediabeat.cli.common import CliError
from mediabeat.clock import FakeClock
from mediabeat.crawler.urls import url_hash
from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.jobs import JobStore, NewJob
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.stores.raw_pages import RawPageStore
from mediabeat.db.stores.retention import RetentionStore
from mediabeat.db.stores.search import SearchStore
from mediabeat.search.query import parse_query
from mediabeat.tasks.base import RunContext
from mediabeat.tasks.cleanup import NightlyCleanup
from tests.crawler_helpers import ctx, handlers
from tests.loopback import LoopbackServer, Route

START = datetime(2026, 1, 3, 9, 0, 30, tzinfo=UTC)


def article_page(words: str, paragraphs: int = 30) -> bytes:
    body = f"<p>{words}, in a sentence long enough to be an article's paragraph.</p>" * paragraphs
    head = f"<html lang='en'><head><title>{words}</title></head>"
    return f"{head}<body><article><h1>{words}</h1>{body}</article></body></html>".encode()


@pytest.fixture
async def org_id(db: Database) -> AsyncIterator[int]:
    yield (await OrgStore(db).create("newsroom", now=START)).id


async def crawl_pages(
    db: Database, site: LoopbackServer, org: int, paths: list[str], **settings: Any
) -> dict[str, int]:
    """Queue and crawl `paths` on `site`; the stored articles' ids by path."""
    site.routes.setdefault("/robots.txt", Route(status=404))
    urls = [site.url(path) for path in paths]
    await JobStore(db).enqueue([NewJob(org, None, u, url_hash(u)) for u in urls], now=START)
    _fetch, crawl = handlers(db, FakeClock(START), **settings)
    try:
        assert (await crawl(ctx(START)))["succeeded"] == len(paths)
    finally:
        await crawl.aclose()
    stored = {a.url: a.id for a in await ArticleStore(db).list(org_id=org, limit=100)}
    return {path: stored[url] for path, url in zip(paths, urls, strict=True)}


async def test_raw_html_is_kept_compressed_within_its_cap_and_nightly_cleanup_removes_it(
    db: Database, site: LoopbackServer, org_id: int
) -> None:
    small, large = article_page("Harbour ferries return", 12), article_page("Council budget vote", 80)
    assert len(small) < 4096 < len(large)
    site.routes["/small"] = Route(body=small, headers={"Content-Type": "text/html; charset=utf-8"})
    site.routes["/large"] = Route(body=large, headers={"Content-Type": "text/html"})
    ids = await crawl_pages(db, site, org_id, ["/small", "/large"], crawler_keep_raw_html=True, raw_html_max_bytes=4096)
    raw = RawPageStore(db)
    kept = await raw.get(ids["/small"])
    assert kept is not None and kept.compression == "zlib" and kept.size == len(small)
    assert kept.html() == small == zlib.decompress(kept.body) and len(kept.body) < len(small) / 3
    assert kept.url == site.url("/small") and kept.content_type == "text/html; charset=utf-8"
    assert await raw.get(ids["/large"]) is None  # above the cap: the article is stored, its HTML is not

    cleanup = NightlyCleanup(
        store=RetentionStore(db), job_retention_days=30, run_retention_days=60, batch_size=10, raw_html_retention_days=7
    )
    soon = await cleanup(_run(START + timedelta(days=6)))
    assert soon["raw_pages_deleted"] == 0 and await raw.get(ids["/small"]) is not None
    later = await cleanup(_run(START + timedelta(days=8)))
    assert later["raw_pages_deleted"] == 1 and await raw.get(ids["/small"]) is None
    assert await ArticleStore(db).get(ids["/small"]) is not None  # the article stays


async def test_raw_html_is_not_kept_by_default(db: Database, site: LoopbackServer, org_id: int) -> None:
    site.routes["/a"] = Route(body=article_page("Quiet default"))
    ids = await crawl_pages(db, site, org_id, ["/a"])
    assert await RawPageStore(db).get(ids["/a"]) is None
    assert await RawPageStore(db).stats() == (0, 0, 0)


async def test_reextract_replaces_a_stale_extraction_and_the_search_index_follows(
    db: Database, database_url: str, site: LoopbackServer, org_id: int
) -> None:
    site.routes["/kept"] = Route(body=article_page("Lighthouse keepers strike"))
    site.routes["/also"] = Route(body=article_page("Orchard harvest early"))
    ids = await crawl_pages(db, site, org_id, ["/kept", "/also"], crawler_keep_raw_html=True)
    site.routes["/bare"] = Route(body=article_page("Tram line opens"))
    bare = (await crawl_pages(db, site, org_id, ["/bare"]))["/bare"]  # crawled without keeping its HTML
    articles = ArticleStore(db)
    fresh = await articles.get(ids["/kept"])
    assert fresh is not None and "Lighthouse" in (fresh.text or "")
    # What an older extraction stored: other words, another title.
    await articles.update_extracted([(ids["/kept"], {"title": "Old title", "text": "zebra crossing stale words"})])
    assert await _found(db, "zebra") == [ids["/kept"]]

    out = await _cli("articles", "reextract", "--org", "newsroom", "--json", database_url=database_url)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == {
        "reextracted": 1,
        "unchanged": 1,
        "failed": 0,
        "no_raw_html": 1,
    }
    again = await articles.get(ids["/kept"])
    assert again is not None and (again.title, again.text) == (fresh.title, fresh.text)
    assert await _found(db, "zebra") == []
    assert await _found(db, "lighthouse") == [ids["/kept"]]
    assert await articles.get(bare) is not None

    out = await _cli("articles", "reextract", "--since", "2026-01-01", "--limit", "1", database_url=database_url)
    assert (
        out.exit_code == 0 and "0 re-extracted, 1 unchanged, 0 failed to extract, 1 without kept raw HTML" in out.stdout
    )


async def test_reextract_help_and_refusals(database_url: str) -> None:
    out = await _cli("articles", "reextract", "--help", database_url=database_url)
    assert out.exit_code == 0
    for option in ("--since", "--org", "--feed", "--limit", "--json"):
        assert option in out.stdout
    bad = await _cli("articles", "reextract", "--since", "last tuesday", database_url=database_url)
    assert isinstance(bad.exception, CliError) and bad.exception.exit_code == 2
    assert "--since 'last tuesday' is not a date" in str(bad.exception)
    missing = await _cli("articles", "reextract", "--org", "nobody", database_url=database_url)
    assert isinstance(missing.exception, CliError) and "no organisation named 'nobody'" in str(missing.exception)


async def _cli(*args: str, database_url: str) -> Any:
    env = {"MEDIABEAT_DATABASE_URL": database_url, "MEDIABEAT_EXTRACTION_WORKERS": "1", "COLUMNS": "200"}
    return await asyncio.to_thread(CliRunner().invoke, cli_app, list(args), env=env)


async def _found(db: Database, words: str) -> list[int]:
    hits = await SearchStore(db).search(parse_query(words), org_id=None, limit=10)
    return [hit.id for hit in hits]


def _run(now: datetime) -> RunContext:
    return RunContext(
        run_id=1,
        task_name="nightly-cleanup",
        trigger="manual",
        scheduled_for=now,
        now=now,
        params={},
        log=logging.getLogger("mediabeat.test"),
    )
