"""The content services: the rules for organisations, feeds, articles, crawl jobs, users and the audit record.

The CLI, the API and the dashboard call these; none of them builds a store. `app.build_services` builds
them once (see `build_content_services`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
from mediabeat.db.stores.raw_pages import RawPageStore
from mediabeat.db.stores.search import SearchStore
from mediabeat.db.stores.stories import StoryStore
from mediabeat.db.stores.websub import WebSubStore
from mediabeat.domain.monitors import BadWebhookUrl
from mediabeat.services.accounts import AccountService
from mediabeat.services.articles import ArticleService
from mediabeat.services.audit import AuditService
from mediabeat.services.demo import DemoOrgService
from mediabeat.services.feeds import FeedService
from mediabeat.services.jobs import JobService
from mediabeat.services.monitors import MonitorService, UrlCheck
from mediabeat.services.news_sitemaps import NewsSitemapFinder
from mediabeat.services.orgs import OrgService
from mediabeat.services.search import SearchService
from mediabeat.services.sitemaps import SitemapService
from mediabeat.services.stories import StoryService
from mediabeat.services.websub import WebSubService
from mediabeat.settings import Settings
from mediabeat.stories.clusterer import StoryClusterer

if TYPE_CHECKING:
    from mediabeat.crawler.http import SafeClient

if TYPE_CHECKING:
    from mediabeat.crawler.articles import ExtractionPool
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
    monitors: MonitorService
    search: SearchService
    stories: StoryService
    websub: WebSubService
    sitemaps: SitemapService


def build_content_services(settings: Settings, db: Database, clock: Clock) -> ContentServices:
    auth = AuthService(db, settings, clock)
    audit = AuditService(store=AuditStore(db), clock=clock)
    org_store, feed_store, article_store = OrgStore(db), FeedStore(db), ArticleStore(db)
    orgs = OrgService(store=org_store, feeds=feed_store, audit=audit, clock=clock)
    feeds = FeedService(
        store=feed_store,
        orgs=org_store,
        audit=audit,
        clock=clock,
        opml_max_feeds=settings.opml_max_feeds,
        finder=lambda: _feed_finder(settings),
        fetcher=lambda: _feed_fetch(settings, db),
        sitemaps=lambda: NewsSitemapFinder(_client_factory(settings)),
        address_refusal=lambda url: _address_refusal(settings, url),
    )
    return ContentServices(
        auth=auth,
        audit=audit,
        orgs=orgs,
        feeds=feeds,
        articles=ArticleService(
            store=article_store, raw_pages=RawPageStore(db), extractor=lambda: _extraction_pool(settings)
        ),
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
        websub=WebSubService(
            store=WebSubStore(db),
            feeds=feed_store,
            jobs=JobStore(db),
            clock=clock,
            public_url=settings.public_url,
            lease_seconds=settings.websub_lease_seconds,
            max_body_bytes=settings.websub_max_body_bytes,
            job_max_attempts=settings.job_max_attempts,
        ),
        sitemaps=SitemapService(client_factory=_client_factory(settings), feeds=feeds),
    )


def webhook_check(settings: Settings) -> UrlCheck:
    """Vets a webhook URL with the crawler's SSRF guard (resolving the name, connecting nowhere)."""

    async def check(url: str) -> None:
        # The crawler's HTTP client is imported when a URL is first checked: the CLI starts without it.
        from mediabeat.crawler.http import ClientConfig, FetchError, SafeClient

        try:
            async with SafeClient(ClientConfig.from_settings(settings)) as client:
                await client.vet(url)
        except FetchError as exc:
            raise BadWebhookUrl(f"the webhook URL is refused: {exc}") from None

    return check


def _client_factory(settings: Settings) -> Callable[[], SafeClient]:
    """A new SSRF-guarded client per use, with the crawler's settings (robots.txt and sitemap probes)."""

    def client() -> SafeClient:
        # The crawler's HTTP client (aiohttp) is imported on first use: the CLI starts without it.
        from mediabeat.crawler.http import ClientConfig, SafeClient

        return SafeClient(ClientConfig.from_settings(settings))

    return client


def _address_refusal(settings: Settings, url: str) -> str | None:
    """Why the crawler would refuse `url`'s literal address with these settings (None: a name, or allowed)."""
    from mediabeat.crawler.http.guard import literal_address_refusal

    return literal_address_refusal(
        url,
        allow_loopback=settings.crawler_allow_private_networks,
        allowed_networks=settings.crawler_allowed_network_ranges,
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


def _extraction_pool(settings: Settings) -> ExtractionPool:
    """The extraction workers of a re-extraction (started on first use; imported only then)."""
    from mediabeat.crawler.articles import ExtractionPool

    return ExtractionPool(settings.extraction_workers)
