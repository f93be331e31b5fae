"""`mediabeat feeds websub` and `mediabeat config`: the subscriptions, and why push is off."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from mediabeat.db.engine import Database
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.stores.websub import NewSubscription, WebSubStore
from tests.processes.harness import mediabeat, mediabeat_in_process

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


async def _seed(database_url: str) -> int:
    db = Database(database_url)
    try:
        org = await OrgStore(db).create("newsroom", now=NOW)
        feed, _ = await FeedStore(db).add(org.id, "https://news.example.org/feed.rss", now=NOW)
        sub = NewSubscription(org.id, feed.id, "https://hub.example.net/", feed.url, "tok", "the-secret-value")
        await WebSubStore(db).record_discovered([sub], now=NOW)
        return feed.id
    finally:
        await db.dispose()


def test_feeds_websub_lists_subscriptions_without_their_secret_and_says_why_push_is_off(
    database_url: str, cli_env: dict[str, str]
) -> None:
    feed_id = asyncio.run(_seed(database_url))
    shown = mediabeat("feeds", "websub", env=cli_env)
    assert shown.returncode == 0, shown.stderr
    assert "MEDIABEAT_PUBLIC_URL is not set" in shown.stdout and "https://hub.example.net/" in shown.stdout
    assert "pending" in shown.stdout and "the-secret-value" not in shown.stdout
    data = json.loads(mediabeat_in_process("feeds", "websub", str(feed_id), "--json", env=cli_env).stdout)
    assert data["push_off"] and data["subscriptions"][0]["feed_id"] == feed_id
    assert "the-secret-value" not in json.dumps(data) and "tok" not in json.dumps(data)
    on = mediabeat_in_process("feeds", "websub", env={**cli_env, "MEDIABEAT_PUBLIC_URL": "https://beat.example.org"})
    assert "push is on" in on.stdout
    config = mediabeat_in_process("config", env=cli_env)
    assert "websub: push is off: MEDIABEAT_PUBLIC_URL is not set" in config.stdout
