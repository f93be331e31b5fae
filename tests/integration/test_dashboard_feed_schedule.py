"""The feeds page shows each feed's schedule (next fetch, interval, reason) and its push state; both databases."""

from __future__ import annotations

import re
from datetime import timedelta

from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.websub import NewSubscription, WebSubStore
from tests.integration.api_fixtures import MEMBER_EMAIL, MEMBER_PASSWORD, ApiEnv
from tests.integration.test_dashboard_pages import signed_in


def row(html: str, url: str) -> str:
    found = re.search(r"<tr[^>]*data-feed-id[^>]*>(?:(?!</tr>).)*" + re.escape(url) + r".*?</tr>", html, re.DOTALL)
    assert found, f"no row for {url}"
    return found.group(0)


async def test_each_feed_row_shows_its_schedule_its_push_state_and_a_fetch_button(api: ApiEnv) -> None:
    db, now = api.services.db, api.services.clock.now()
    feeds = FeedStore(db)
    polled, _ = await feeds.add(api.org_id, "https://polled.example/rss", now=now)
    pushed, _ = await feeds.add(api.org_id, "https://pushed.example/rss", now=now)
    asking, _ = await feeds.add(api.org_id, "https://asking.example/rss", now=now)
    async with db.write() as conn:
        from mediabeat.db.tables import feeds as feeds_t

        await conn.execute(
            feeds_t.update()
            .where(feeds_t.c.id == polled.id)
            .values(next_fetch_at=now + timedelta(minutes=20), fetch_interval_s=1200, interval_reason="publishing rate")
        )
    store = WebSubStore(db)
    subs = [
        NewSubscription(api.org_id, pushed.id, "https://hub.example/", "https://pushed.example/rss", "t1", "s1"),
        NewSubscription(api.org_id, asking.id, "https://hub.example/", "https://asking.example/rss", "t2", "s2"),
    ]
    await store.record_discovered(subs, now=now)
    verified = await store.for_feed(pushed.id)
    assert verified is not None
    lease = {"state": "verified", "lease_expires_at": now + timedelta(days=10), "last_push_at": now}
    await store.update(verified.id, lease, now=now)

    async with signed_in(api) as client:
        html = (await client.get("/app/admin/feeds")).text
    polled_row = row(html, "https://polled.example/rss")
    assert 'data-field="interval"' in polled_row and "publishing rate" in polled_row and "20 min" in polled_row
    assert 'data-field="push"' not in polled_row
    pushed_row = row(html, "https://pushed.example/rss")
    assert 'data-field="push"' in pushed_row and "by its hub, lease until" in pushed_row
    asking_row = row(html, "https://asking.example/rss")
    assert "asking its hub" in asking_row and "push is off" in asking_row  # the test app has no public URL
    assert 'data-action="feed-fetch"' in polled_row

    async with signed_in(api, MEMBER_EMAIL, MEMBER_PASSWORD) as member:
        mine = (await member.get("/app/feeds")).text
    assert "by its hub, lease until" in mine and 'data-action="feed-fetch"' in mine
