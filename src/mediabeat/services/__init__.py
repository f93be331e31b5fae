"""The content services: the rules for organisations, feeds, articles, crawl jobs, users and the audit record.

The CLI, the API and the dashboard call these; none of them builds a store. `app.build_services` builds
them once (see `build_content_services`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mediabeat.auth.service import AuthService
from mediabeat.clock import Clock
from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.audit import AuditStore
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import JobStore
from mediabeat.db.stores.monitor_deliveries import DeliveryStore
from mediabeat.db.stores.monitor_matches import MatchStore
from mediabeat.db.stores.monitors import MonitorStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.stores.search import SearchStore
from mediabeat.db.stores.stories import StoryStore
from mediabeat.services.accounts import AccountService
from mediabeat.services.articles import ArticleService
from mediabeat.services.audit import AuditService
from mediabeat.services.demo import DemoOrgService
from mediabeat.services.feeds import FeedService
from mediabeat.services.jobs import JobService
from mediabeat.services.monitors import MonitorService, UrlCheck
from mediabeat.services.orgs import OrgService
from mediabeat.services.search import SearchService
from mediabeat.services.stories import StoryService
from mediabeat.settings import Settings
from mediabeat.stories.clusterer import StoryClusterer


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
    monitors: MonitorService
    search: SearchService
    stories: StoryService


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
            store=feed_store, orgs=org_store, audit=audit, clock=clock, opml_max_feeds=settings.opml_max_feeds
        ),
        articles=ArticleService(store=article_store),
        jobs=JobService(store=JobStore(db), audit=audit, clock=clock),
        accounts=AccountService(auth=auth, orgs=org_store, audit=audit),
        demo=DemoOrgService(orgs=orgs, feeds=feed_store, articles=article_store, audit=audit),
        monitors=MonitorService(
            store=MonitorStore(db),
            matches=MatchStore(db),
            deliveries=DeliveryStore(db),
            audit=audit,
            clock=clock,
            check_url=webhook_check(settings),
        ),
        search=SearchService(store=SearchStore(db)),
        stories=StoryService(
            store=(stories := StoryStore(db)),
            clusterer=StoryClusterer(store=stories, clock=clock),
            orgs=orgs,
            audit=audit,
        ),
    )


def webhook_check(settings: Settings) -> UrlCheck:
    """Vets a webhook URL with the crawler's SSRF guard (resolving the name, connecting nowhere)."""
    from mediabeat.crawler.http import ClientConfig, SafeClient

    config = ClientConfig.from_settings(settings)

    async def check(url: str) -> None:
        async with SafeClient(config) as client:
            await client.vet(url)

    return check
