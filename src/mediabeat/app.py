"""The composition root: the one place that builds the real database, clock, services and app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from mediabeat import __version__
from mediabeat.auth.service import AuthService
from mediabeat.clock import Clock, ScaledClock, SystemClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.jobs import JobStore
from mediabeat.db.stores.nodes import LeaseStore, NodeStore
from mediabeat.db.stores.retention import RetentionStore
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.db.stores.search import SearchStore
from mediabeat.db.stores.stats import StatsStore
from mediabeat.scheduler.alerts import Alerters, EmailAlerter, NoAlerts, RunAlerts, WebhookAlerter
from mediabeat.scheduler.cluster import ClusterCoordinator
from mediabeat.scheduler.handoff import RunHandOff
from mediabeat.scheduler.loop import SHUTDOWN_GRACE_S, SchedulerLoop
from mediabeat.scheduler.notify import ChangeNotifier, LocalNotifier
from mediabeat.scheduler.registry import HandlerRegistry
from mediabeat.scheduler.service import SchedulerService, SchedulerTimings
from mediabeat.scheduler.sqlite_notify import SQLiteChangeNotifier
from mediabeat.scheduler.task_alerting import OwnChannelSetup
from mediabeat.services import ContentServices, build_content_services
from mediabeat.settings import Settings
from mediabeat.tasks.cleanup import NightlyCleanup
from mediabeat.tasks.wiring import register_crawler, register_websub

if TYPE_CHECKING:
    from fastapi import FastAPI  # imported by create_app: CLI commands start without the web framework

log = logging.getLogger("mediabeat")


@dataclass
class Services:
    """Everything a process needs, built once from settings. Close it with `await services.close()`."""

    settings: Settings
    db: Database
    clock: Clock
    registry: HandlerRegistry
    scheduler: SchedulerService
    loop: SchedulerLoop
    cluster: ClusterCoordinator
    handoff: RunHandOff
    content: ContentServices
    maintenance_db: Database | None = None

    @property
    def auth(self) -> AuthService:
        """Sign-in and credentials: the one AuthService of this process (also `content.auth`)."""
        return self.content.auth

    async def close(self) -> None:
        """Let runs this process started finish (chained runs too), then release everything."""
        await self.scheduler.wait_idle()
        await self.scheduler.alerting.drain()
        await self.scheduler.notifier.close()
        for name in self.registry.names():  # handlers that hold resources (crawl-queue's process pool)
            close = getattr(self.registry.get(name), "aclose", None)
            if close is not None:
                await close()
        await self.db.dispose()
        if self.maintenance_db is not None and self.maintenance_db is not self.db:
            await self.maintenance_db.dispose()


def build_clock(settings: Settings) -> Clock:
    if settings.clock_epoch is not None:
        return ScaledClock(epoch=settings.clock_epoch, speed=settings.clock_speed, origin=settings.clock_origin)
    return SystemClock()


def build_registry(settings: Settings, db: Database, clock: Clock | None = None) -> HandlerRegistry:
    """The built-in task handlers, wired to their dependencies."""
    registry = HandlerRegistry()
    register_crawler(registry, settings, db, clock or build_clock(settings))
    register_websub(registry, settings, db)
    registry.register(
        "nightly_cleanup",
        NightlyCleanup(
            store=RetentionStore(db),
            job_retention_days=settings.job_retention_days,
            run_retention_days=settings.run_retention_days,
            batch_size=settings.cleanup_batch_size,
            raw_html_retention_days=settings.raw_html_retention_days,
            search=SearchStore(db),
        ),
        description="Delete crawl jobs and run history older than their retention periods, "
        "and kept raw HTML past its own; keep the search indexes' statistics and newest slice up.",
    )
    return registry


def build_notifier(db: Database) -> ChangeNotifier:
    """Wake-ups for the loop: in-process, plus LISTEN/NOTIFY on PostgreSQL or commits by other processes on SQLite."""
    if db.is_postgres:
        from mediabeat.scheduler.pg_notify import PostgresNotifier  # psycopg is imported only on PostgreSQL

        return PostgresNotifier(db.url)
    if db.is_sqlite and db.sqlite_path is not None:
        return SQLiteChangeNotifier(db.sqlite_path)
    return LocalNotifier()


def build_alerts(settings: Settings) -> RunAlerts:
    channels: list[RunAlerts] = []
    if settings.alert_webhook_url:
        channels.append(WebhookAlerter(url=settings.alert_webhook_url, dashboard_url=settings.public_url))
    if settings.alert_email_recipients and (server := settings.smtp_server) is not None:
        channels.append(
            EmailAlerter(
                server=server,
                sender=settings.alert_email_from,
                recipients=settings.alert_email_recipients,
                dashboard_url=settings.public_url,
            )
        )
    if not channels:
        return NoAlerts()
    return channels[0] if len(channels) == 1 else Alerters(channels)


def build_own_alert_channels(settings: Settings) -> OwnChannelSetup:
    """What a task's own alert webhook (through the crawler's SSRF-guarded client) and address need."""

    def client() -> Any:
        from mediabeat.crawler.http import ClientConfig, SafeClient  # on the first alert: the CLI starts without it

        return SafeClient(ClientConfig.from_settings(settings))

    return OwnChannelSetup(
        client_factory=client,
        mail_server=settings.smtp_server,
        mail_sender=settings.alert_email_from,
        dashboard_url=settings.public_url,
    )


def scheduler_timings(settings: Settings) -> SchedulerTimings:
    """The scheduler's time constants, from settings."""
    return SchedulerTimings(
        misfire_grace=timedelta(seconds=settings.misfire_grace_seconds),
        max_catch_up=settings.max_catch_up,
        stale_after=timedelta(seconds=settings.stale_after_seconds),
        claim_batch=settings.claim_batch,
        max_concurrent=settings.max_concurrent_runs,
        backlog=settings.run_backlog,
        backlog_hold=timedelta(seconds=settings.run_backlog_hold_seconds),
        heartbeat=timedelta(seconds=settings.heartbeat_seconds),
        cancel_grace=timedelta(seconds=settings.cancel_grace_seconds),
        run_log_max_chars=settings.run_log_max_chars,
        keep_empty_runs=settings.keep_empty_runs,
    )


def build_services(
    settings: Settings, *, clock: Clock | None = None, db: Database | None = None, role: str = "serve"
) -> Services:
    """Wire the real services. Nothing connects until first use. `role` is "serve" or "worker"."""
    db = db or Database(settings.database_url)
    # On PostgreSQL, heartbeats and the leader's duties get a pool of their own: runs that hold
    # every connection of the main pool must not make this node look dead. (On SQLite writes
    # queue on one lock whatever the pool, and an in-memory database exists once per engine.)
    maintenance_db = Database(settings.database_url, pool_size=2) if db.is_postgres else db
    clock = clock or build_clock(settings)
    registry = build_registry(settings, db, clock)
    scheduler = SchedulerService(
        store=SchedulerStore(db),
        maintenance_store=SchedulerStore(maintenance_db),
        stats_store=StatsStore(db),
        registry=registry,
        clock=clock,
        node_id=settings.resolved_node_id,
        timings=scheduler_timings(settings),
        notifier=build_notifier(db),
        alerts=build_alerts(settings),
        own_alert_channels=build_own_alert_channels(settings),
    )
    cluster = ClusterCoordinator(
        nodes=NodeStore(maintenance_db),
        leases=LeaseStore(maintenance_db),
        jobs=JobStore(maintenance_db),
        counts=StatsStore(maintenance_db),
        service=scheduler,
        clock=clock,
        role=role,
        heartbeat_seconds=settings.resolved_node_heartbeat_seconds,
        dead_after=timedelta(seconds=settings.stale_after_seconds),
    )
    loop = SchedulerLoop(
        service=scheduler,
        clock=clock,
        tick_seconds=settings.tick_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
        database_url=settings.database_url,
        cluster=cluster,
    )
    return Services(
        settings=settings,
        db=db,
        clock=clock,
        registry=registry,
        scheduler=scheduler,
        loop=loop,
        cluster=cluster,
        handoff=RunHandOff(service=scheduler, cluster=cluster),
        content=build_content_services(settings, db, clock),
        maintenance_db=maintenance_db,
    )


def create_app(settings: Settings, *, services: Services | None = None) -> FastAPI:
    """The HTTP app. With ENABLE_SCHEDULER on, its lifespan also runs the scheduler loop."""
    from fastapi import FastAPI

    from mediabeat.auth.passwords import prepare_sign_in
    from mediabeat.web.api import install_api
    from mediabeat.web.body_limit import BodyLimit
    from mediabeat.web.dashboard import install_dashboard
    from mediabeat.web.docs import install_api_docs
    from mediabeat.web.health import router as health_router
    from mediabeat.web.http_metrics import HttpMetrics
    from mediabeat.web.websub import router as websub_router

    built = services or build_services(settings)
    prepare_sign_in()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.enable_scheduler:
            stop = asyncio.Event()
            loop_task = asyncio.create_task(built.loop.run(stop), name="mediabeat-scheduler")
            log.info("scheduler loop started (node %s)", built.scheduler.node_id)
            try:
                yield
            finally:
                stop.set()
                await loop_task
                await built.close()
            return
        log.info("ENABLE_SCHEDULER is off: no automatic runs; the API and run-now still work")
        try:
            # Runs started through the API: no loop heartbeats them, so the service does.
            async with built.scheduler.heartbeating():
                yield
                await built.scheduler.wait_idle(within=SHUTDOWN_GRACE_S)
                await built.scheduler.cancel_all()
        finally:
            await built.close()

    app = FastAPI(
        title="MediaBeat",
        version=__version__,
        summary="Scheduled crawling and background tasks for media monitoring",
        lifespan=lifespan,
        docs_url=None,  # served by install_api_docs from the package, not from a CDN
        redoc_url=None,
    )
    app.state.services = built
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(HttpMetrics)  # outermost: counts every answer, the 413s too
    app.include_router(health_router)
    app.include_router(websub_router)
    install_api(app, built)
    install_dashboard(app)
    install_api_docs(app)
    return app
