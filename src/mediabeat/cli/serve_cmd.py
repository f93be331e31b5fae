"""`mediabeat serve` and `mediabeat worker`: the long-running processes."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Annotated

import typer
import uvicorn

from mediabeat.app import Services, build_services, create_app
from mediabeat.cli.common import CliError, setup_logging
from mediabeat.db import migrate
from mediabeat.db.engine import redacted
from mediabeat.settings import load_settings

log = logging.getLogger("mediabeat")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 8000,
) -> None:
    """Migrate the database, then serve HTTP and (with ENABLE_SCHEDULER on) run the scheduler loop."""
    settings = load_settings()
    setup_logging(settings)
    migrate.upgrade(settings.database_url)
    log.info("database %s is up to date", redacted(settings.database_url))
    app = create_app(settings)
    config = uvicorn.Config(app, host=host, port=port, log_level=settings.log_level.lower(), proxy_headers=True)
    server = uvicorn.Server(config)
    try:
        server.run()
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def worker() -> None:
    """Migrate the database, then run the scheduler loop without HTTP until SIGINT or SIGTERM."""
    settings = load_settings()
    setup_logging(settings)
    migrate.upgrade(settings.database_url)
    asyncio.run(run_worker(build_services(settings, role="worker")))


async def run_worker(services: Services) -> None:
    """Run the scheduler loop of `services` until SIGINT or SIGTERM, then close them."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker %s started", services.scheduler.node_id)
    try:
        await services.loop.run(stop)
    finally:
        await services.close()
        log.info("worker %s stopped", services.scheduler.node_id)
