"""Organisations, feeds and articles on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mediabeat.crawler.urls import url_hash
from mediabeat.db.engine import Database
from mediabeat.db.stores import orgs as orgs_module
from mediabeat.db.stores.articles import ArticleStore, NewArticle
from mediabeat.db.stores.feeds import DueCursor, FeedStore, FeedUpdate
from mediabeat.db.stores.jobs import JobStore, NewJob
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.domain.content import OrgExists

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def ok_fetch(feed_id: int, url: str) -> FeedUpdate:
    """The outcome of a fetch that went well and changed nothing but the feed's title."""
    return FeedUpdate(
        id=feed_id,
        url=url,
        title="One",
        site_url=None,
        active=True,
        etag=None,
        last_modified=None,
        last_fetched_at=NOW,
        last_status="ok",
        last_error=None,
        consecutive_failures=0,
        next_fetch_at=None,
        disabled_reason=None,
    )


async def test_orgs_create_get_list_delete(db: Database) -> None:
    orgs = OrgStore(db)
    created = await orgs.create("newsroom", now=NOW)
    assert created.name == "newsroom" and created.is_demo is False and created.created_at == NOW
    with pytest.raises(OrgExists, match="already exists"):
        await orgs.create("newsroom", now=NOW)
    assert await orgs.get(created.id) == created
    assert await orgs.get_by_name("newsroom") == created
    assert await orgs.get_by_name("missing") is None
    await orgs.create("demo", now=NOW, is_demo=True)
    assert [o.name for o in await orgs.list()] == ["newsroom", "demo"]
    assert await orgs.delete(created.id) is True
    assert await orgs.delete(created.id) is False
    assert await orgs.get(created.id) is None


async def test_feed_add_is_idempotent_per_org(db: Database) -> None:
    orgs, feeds = OrgStore(db), FeedStore(db)
    a = await orgs.create("a", now=NOW)
    b = await orgs.create("b", now=NOW)
    first, created = await feeds.add(a.id, "http://127.0.0.1/feed.xml", now=NOW, title="Feed")
    assert created and first.active and first.consecutive_failures == 0 and first.title == "Feed"
    again, created_again = await feeds.add(a.id, "http://127.0.0.1/feed.xml", now=NOW)
    assert not created_again and again.id == first.id
    _, created_other = await feeds.add(b.id, "http://127.0.0.1/feed.xml", now=NOW)
    assert created_other
    assert len(await feeds.list(org_id=a.id)) == 1 and len(await feeds.list()) == 2
    many = await feeds.add_many(a.id, [("http://127.0.0.1/feed.xml", None), ("http://127.0.0.1/2", "Two")], now=NOW)
    assert [c for _, c in many] == [False, True]


async def test_disable_enable_and_bulk_updates(db: Database) -> None:
    orgs, feeds = OrgStore(db), FeedStore(db)
    org = await orgs.create("a", now=NOW)
    f1, _ = await feeds.add(org.id, "http://127.0.0.1/1", now=NOW)
    f2, _ = await feeds.add(org.id, "http://127.0.0.1/2", now=NOW)
    later = NOW + timedelta(hours=2)
    update = replace(
        ok_fetch(f1.id, f1.url),
        etag='"v1"',
        last_status="http_500",
        last_error="HTTP 500",
        consecutive_failures=3,
        next_fetch_at=later,
    )
    # f2 "moves" to f1's URL: the org already has it, so the URL stays and the error says why.
    moved = replace(
        update, id=f2.id, url=f1.url, last_status="ok", last_error=None, consecutive_failures=0, next_fetch_at=None
    )
    assert await feeds.apply_updates([update, moved], org_of={f1.id: org.id, f2.id: org.id}, now=NOW) == 2
    one = await feeds.get(f1.id)
    assert one is not None and one.consecutive_failures == 3 and one.etag == '"v1"' and one.next_fetch_at == later
    two = await feeds.get(f2.id)
    assert two is not None and two.url == "http://127.0.0.1/2" and "already has" in (two.last_error or "")
    assert [f.id for f in await feeds.due(now=NOW)] == [f2.id]
    assert [f.id for f in await feeds.due(now=later)] == [f1.id, f2.id]

    disabled = await feeds.set_active(f1.id, False, reason="gone")
    assert disabled is not None and not disabled.active and disabled.disabled_reason == "gone"
    assert [f.id for f in await feeds.list(active=False)] == [f1.id]
    enabled = await feeds.set_active(f1.id, True)
    assert enabled is not None and enabled.active and enabled.consecutive_failures == 0
    assert enabled.next_fetch_at is None and enabled.disabled_reason is None
    assert await feeds.set_active(9999, True) is None
    assert await feeds.delete(f1.id) and not await feeds.delete(f1.id)


async def test_a_fetch_never_switches_a_feed_back_on_and_two_moves_to_one_url_keep_one(db: Database) -> None:
    orgs, feeds = OrgStore(db), FeedStore(db)
    org = await orgs.create("a", now=NOW)
    f1, _ = await feeds.add(org.id, "http://127.0.0.1/1", now=NOW)
    f2, _ = await feeds.add(org.id, "http://127.0.0.1/2", now=NOW)
    f3, _ = await feeds.add(org.id, "http://127.0.0.1/3", now=NOW)
    fetched = ok_fetch(f1.id, f1.url)
    # Someone switches f1 off while the hourly fetch, which read it as active, is in flight.
    await feeds.change(f1.id, active=False, reason="paywalled", now=NOW)
    gone = replace(fetched, id=f2.id, url=f2.url, active=False, last_status="http_410", disabled_reason="410 Gone")
    # f3 and f2 both "move" to one new URL in the same batch: the first takes it.
    moves = [
        replace(fetched, id=f3.id, url="http://127.0.0.1/new"),
        replace(fetched, id=f2.id, url="http://127.0.0.1/new", active=False, disabled_reason="410 Gone"),
    ]
    org_of = {f.id: org.id for f in (f1, f2, f3)}
    assert await feeds.apply_updates([fetched, gone], org_of=org_of, now=NOW) == 2
    one, two = await feeds.get(f1.id), await feeds.get(f2.id)
    assert one is not None and not one.active and one.disabled_reason == "paywalled" and one.title == "One"
    assert two is not None and not two.active and two.disabled_reason == "410 Gone"
    assert await feeds.apply_updates(moves, org_of=org_of, now=NOW) == 2
    three, two = await feeds.get(f3.id), await feeds.get(f2.id)
    assert three is not None and three.url == "http://127.0.0.1/new" and three.active
    assert two is not None and two.url == "http://127.0.0.1/2" and "already has" in (two.last_error or "")


async def test_articles_save_list_get(db: Database) -> None:
    org = await OrgStore(db).create("a", now=NOW)
    store = ArticleStore(db)
    ids = []
    for i in range(3):
        url = f"http://127.0.0.1/a/{i}"
        ids.append(
            await store.save(
                NewArticle(
                    org_id=org.id,
                    feed_id=None,
                    url=url,
                    url_hash=url_hash(url),
                    canonical_url=url,
                    title=f"T{i}",
                    author=None,
                    published_at=None,
                    summary=None,
                    text="body",
                    language="en",
                ),
                now=NOW,
            )
        )
    listed = await store.list(org_id=org.id, limit=2)
    assert [a.id for a in listed] == [ids[2], ids[1]]
    assert [a.id for a in await store.list(before_id=ids[1])] == [ids[0]]
    got = await store.get(ids[0])
    assert got is not None and got.title == "T0" and got.text == "body" and got.fetched_at == NOW
    assert await store.count(org_id=org.id) == 3


async def test_deleting_an_org_removes_what_it_owns_in_batches_and_leaves_the_others(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orgs_module, "DELETE_BATCH", 7)  # several batches per table from a small org
    orgs, feeds, articles, jobs = OrgStore(db), FeedStore(db), ArticleStore(db), JobStore(db)
    doomed, kept = await orgs.create("doomed", now=NOW), await orgs.create("kept", now=NOW)
    for org in (doomed, kept):
        feed, _ = await feeds.add(org.id, f"http://127.0.0.1/{org.name}.xml", now=NOW)
        urls = [f"http://127.0.0.1/{org.name}/{n}" for n in range(20)]
        await jobs.enqueue([NewJob(org.id, feed.id, u, url_hash(u)) for u in urls], now=NOW)
        await articles.save_many(
            [NewArticle(org.id, feed.id, u, url_hash(u), None, "t", None, None, None, "x", None) for u in urls],
            now=NOW,
        )
    batches: list[int] = []
    real = OrgStore._delete_batch

    async def counting(self: OrgStore, table: object, org_id: int) -> int:
        deleted = await real(self, table, org_id)  # type: ignore[arg-type]
        batches.append(deleted)
        return deleted

    monkeypatch.setattr(OrgStore, "_delete_batch", counting)
    assert await orgs.delete(doomed.id) is True
    assert await orgs.get(doomed.id) is None
    assert max(batches) == 7 and sum(batches) == 20 + 20 + 1  # jobs, articles, the feed: 7 rows a transaction
    assert len(await articles.list(org_id=kept.id, limit=100)) == 20
    assert len(await articles.list(org_id=doomed.id, limit=100)) == 0
    assert len(await feeds.list(org_id=kept.id)) == 1 and await feeds.list(org_id=doomed.id) == []


async def test_due_pages_give_every_due_feed_exactly_once_even_as_the_pass_reschedules_them(db: Database) -> None:
    """Keyset pages over (next_fetch_at, id): new feeds first, then the most overdue; many share one time."""
    orgs, feeds = OrgStore(db), FeedStore(db)
    org_a, org_b = await orgs.create("a", now=NOW), await orgs.create("b", now=NOW)
    added = [
        r for r, _ in await feeds.add_many(org_a.id, [(f"http://127.0.0.1/a{n}", None) for n in range(9)], now=NOW)
    ]
    added += [
        r for r, _ in await feeds.add_many(org_b.id, [(f"http://127.0.0.1/b{n}", None) for n in range(9)], now=NOW)
    ]
    shared, earlier, later = NOW - timedelta(hours=1), NOW - timedelta(hours=2), NOW + timedelta(minutes=5)
    plan = [None, None, None, shared, shared, shared, shared, shared, shared, earlier, earlier, later, later] + [
        shared
    ] * 5
    updates = [replace(ok_fetch(f.id, f.url), next_fetch_at=when) for f, when in zip(added, plan, strict=True)]
    await feeds.apply_updates(updates, org_of={f.id: f.org_id for f in added}, now=NOW)
    off = added[4]  # due, but switched off: never listed
    await feeds.set_active(off.id, False, now=NOW)
    expected = [
        f.id for f, when in zip(added, plan, strict=True) if f.id != off.id and when is not None and when <= NOW
    ]
    never = [f.id for f, when in zip(added, plan, strict=True) if when is None]

    seen: list[int] = []
    after = None
    while page := await feeds.due_page(now=NOW, after=after, limit=4):
        assert len(page) <= 4
        seen += [f.id for f in page]
        # The pass reschedules what it fetched before the next page is read: nothing comes back.
        moved = [replace(ok_fetch(f.id, f.url), next_fetch_at=NOW + timedelta(hours=1)) for f in page]
        await feeds.apply_updates(moved, org_of={f.id: f.org_id for f in page}, now=NOW)
        after = DueCursor.of(page[-1])
    assert seen[:3] == never
    dated = sorted((when, f.id) for f, when in zip(added, plan, strict=True) if f.id in expected)
    assert seen[3:] == [fid for _, fid in dated]
    assert len(seen) == len(set(seen)) == len(never) + len(expected)
    assert await feeds.due(now=NOW) == []


async def test_active_pages_and_add_many_in_one_statement_per_batch(db: Database) -> None:
    orgs, feeds = OrgStore(db), FeedStore(db)
    org = await orgs.create("a", now=NOW)
    first = await feeds.add_many(org.id, [("http://127.0.0.1/1", "One"), ("http://127.0.0.1/2", None)], now=NOW)
    # An URL already there, one new, and one twice in the same batch.
    again = await feeds.add_many(
        org.id,
        [("http://127.0.0.1/2", "Two"), ("http://127.0.0.1/3", "x" * 600), ("http://127.0.0.1/3", None)],
        now=NOW,
        batch_size=2,
    )
    assert [(r.url, created) for r, created in first] == [("http://127.0.0.1/1", True), ("http://127.0.0.1/2", True)]
    assert [(r.url, created) for r, created in again] == [
        ("http://127.0.0.1/2", False),
        ("http://127.0.0.1/3", True),
        ("http://127.0.0.1/3", False),
    ]
    assert again[0][0] == first[1][0] and again[1][0].title == "x" * 500 and again[2][0].id == again[1][0].id
    await feeds.set_active(first[0][0].id, False, now=NOW)
    pages = [await feeds.active_page(after_id=0, limit=1)]
    pages.append(await feeds.active_page(after_id=pages[-1][-1].id, limit=1))
    pages.append(await feeds.active_page(after_id=pages[-1][-1].id, limit=1))
    assert [[f.url for f in page] for page in pages] == [["http://127.0.0.1/2"], ["http://127.0.0.1/3"], []]


async def test_known_links_are_per_organisation(db: Database) -> None:
    orgs, jobs = OrgStore(db), JobStore(db)
    a, b = await orgs.create("a", now=NOW), await orgs.create("b", now=NOW)
    link = "http://127.0.0.1/story"
    await jobs.enqueue([NewJob(a.id, None, link, url_hash(link))], now=NOW)
    other = "http://127.0.0.1/other"
    pairs = [(a.id, url_hash(link)), (b.id, url_hash(link)), (a.id, url_hash(other))]
    assert await jobs.known(pairs) == {(a.id, url_hash(link))}
