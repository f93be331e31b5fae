"""The content services: the rules for organisations, feeds, articles, crawl jobs, users and the audit record.

The CLI, the API and the dashboard call these; none of them builds a store. `app.build_services` builds
them once (see `build_content_services`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mediabeat.auth.service import AuthService
from mediabeat.clock import Clock
from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.audit import AuditStore
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import JobStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.services.accounts import AccountService
from mediabeat.services.articles import ArticleService
from mediabeat.services.audit import AuditService
from mediabeat.services.demo import DemoOrgService
from mediabeat.services.feeds import FeedService
from mediabeat.services.jobs import JobService
from mediabeat.services.orgs import OrgService
from mediabeat.settings import Settings

if TYPE_CHECKING:
    from mediabeat.crawler.discovery import FeedFinder
    from mediabeat.tasks.rss_fetch import RssFetch


@dataclass(frozen=True, slots=True)
class ContentServices:
    """One of each content service, sharing one database and clock."""

    auth: AuthService
    audit: AuditService
    orgs: OrgService
    feeds: FeedService
    articles: ArticleService
    jobs: JobService
    accounts: AccountService
    demo: DemoOrgService


def build_content_services(settings: Settings, db: Database, clock: Clock) -> ContentServices:
    auth = AuthService(db, settings, clock)
    audit = AuditService(store=AuditStore(db), clock=clock)
    org_store, feed_store, article_store = OrgStore(db), FeedStore(db), ArticleStore(db)
    orgs = OrgService(store=org_store, feeds=feed_store, audit=audit, clock=clock)
    return ContentServices(
        auth=auth,
        audit=audit,
        orgs=orgs,
        feeds=FeedService(
            store=feed_store,
            orgs=org_store,
            audit=audit,
            clock=clock,
            opml_max_feeds=settings.opml_max_feeds,
            finder=lambda: _feed_finder(settings),
            fetcher=lambda: _feed_fetch(settings, db),
        ),
        articles=ArticleService(store=article_store),
        jobs=JobService(store=JobStore(db), audit=audit, clock=clock),
        accounts=AccountService(auth=auth, orgs=org_store, audit=audit),
        demo=DemoOrgService(orgs=orgs, feeds=feed_store, articles=article_store, audit=audit),
    )


def _feed_finder(settings: Settings) -> FeedFinder:
    # The crawler's modules load on first use: CLI commands that never fetch start faster.
    from mediabeat.crawler.discovery import FeedFinder
    from mediabeat.crawler.http import ClientConfig, SafeClient

    config = ClientConfig.from_settings(settings)
    return FeedFinder(lambda: SafeClient(config))


def _feed_fetch(settings: Settings, db: Database) -> RssFetch:
    from mediabeat.tasks.wiring import build_feed_fetch

    return build_feed_fetch(settings, db)
