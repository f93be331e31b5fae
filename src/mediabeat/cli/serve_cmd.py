"""`mediabeat serve` and `mediabeat worker`: the long-running processes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from typing import TYPE_CHECKING, Annotated
from wsgiref.simple_server import WSGIServer

import prometheus_client
import typer

from mediabeat import heap, telemetry
from mediabeat.app import Services, build_services, create_app
from mediabeat.auth.service import UserInputError
from mediabeat.cli import demo_cmd
from mediabeat.cli.common import CliError, setup_logging
from mediabeat.db import migrate
from mediabeat.db.engine import redacted
from mediabeat.settings import Settings, load_settings

if TYPE_CHECKING:
    import uvicorn  # imported by `serve`: the other commands start without the web server

log = logging.getLogger("mediabeat")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 8000,
    demo: Annotated[
        bool, typer.Option("--demo", help="Also run the local news site and follow it in an org named demo")
    ] = False,
    demo_port: Annotated[int, typer.Option(min=0, max=65535, help="Port of the demo site on 127.0.0.1")] = 8001,
) -> None:
    """Migrate the database, then serve HTTP and (with ENABLE_SCHEDULER on) run the scheduler loop."""
    import uvicorn

    settings = load_settings()
    setup_logging(settings)
    ensure_port_free(host, port)  # before the migrations and the first admin: nothing starts on a taken port
    if demo and not settings.crawler_allow_private_networks:
        # The crawler refuses loopback addresses by default, and the demo site is on 127.0.0.1.
        os.environ["MEDIABEAT_CRAWLER_ALLOW_PRIVATE_NETWORKS"] = "true"
        settings = load_settings()
        print(
            "demo: MEDIABEAT_CRAWLER_ALLOW_PRIVATE_NETWORKS=true for this process, to crawl the demo site", flush=True
        )
    migrate.upgrade(settings.database_url)
    log.info("database %s is up to date", redacted(settings.database_url))
    first_admin = ensure_first_admin(settings)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        # In JSON, uvicorn's own lines go through our handler too (None: it leaves logging alone).
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
    )
    server = announcing_server(config, announcement=dashboard_announcement(host, port, first_admin))
    try:
        if demo:
            asyncio.run(demo_cmd.serve_with_demo(server, app.state.services, demo_cmd.bind_demo_socket(demo_port)))
        else:
            server.run()
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def ensure_port_free(host: str, port: int) -> None:
    """CliError when host:port cannot be listened on (another process holds it), as uvicorn would bind it."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CliError(
            f"cannot listen on {host}:{port}: {reason}: stop what uses it, or choose another --port"
        ) from None


def announcing_server(config: uvicorn.Config, *, announcement: str) -> uvicorn.Server:
    """A uvicorn server that says where the dashboard is once it listens (not before: the port may be taken)."""
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                heap.settle()  # the app and its services are built: each later full collection skips them
                print(announcement, flush=True)

    return AnnouncingServer(config)


def dashboard_url(host: str, port: int) -> str:
    """The address to open in a browser: a wildcard listen address is reached on the loopback one."""
    shown = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/app/"


def dashboard_announcement(host: str, port: int, first_admin: tuple[str, bool] | None) -> str:
    """The start-up line with the dashboard's address; `first_admin` is (email, password was generated) if just made."""
    if first_admin is None:
        who = "sign in with your MediaBeat account"
    elif first_admin[1]:
        who = f"sign in as {first_admin[0]} with the password above; you will be asked to choose your own"
    else:
        who = f"sign in as {first_admin[0]}"
    return f"dashboard: {dashboard_url(host, port)} ({who})"


def ensure_first_admin(settings: Settings) -> tuple[str, bool] | None:
    """With no admin yet, create one and print its credentials once, with how to change them.

    Returns (email, whether its password was generated) when one was created, else None.
    """

    async def body() -> tuple[str, str | None] | None:
        services = build_services(settings)
        try:
            return await services.auth.ensure_admin()
        except UserInputError as exc:
            raise CliError(f"cannot create the first admin from MEDIABEAT_ADMIN_EMAIL/PASSWORD: {exc}", 2) from None
        finally:
            await services.db.dispose()

    created = asyncio.run(body())
    if created is None:
        return None
    email, password = created
    if password is None:
        typer.echo(f"Created the first admin {email} with the password from MEDIABEAT_ADMIN_PASSWORD.")
        return email, False
    typer.echo(
        "\n".join(
            [
                "",
                "No admin existed, so one was created. These credentials are shown only now:",
                f"    email:    {email}",
                f"    password: {password}",
                "The dashboard asks for a new password at the first sign-in; or change it with:",
                f"    mediabeat users set-password {email} --password-stdin",
                "(or set MEDIABEAT_ADMIN_EMAIL and MEDIABEAT_ADMIN_PASSWORD before the first start)",
                "",
            ]
        )
    )
    return email, True


def worker(
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            envvar="MEDIABEAT_WORKER_METRICS_PORT",
            help="Serve this worker's Prometheus counters (runs, feeds, pages) on this port, at any path",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(envvar="MEDIABEAT_WORKER_METRICS_HOST", help="Address for --metrics-port")
    ] = "127.0.0.1",
) -> None:
    """Migrate the database, then run the scheduler loop without HTTP until SIGINT or SIGTERM."""
    settings = load_settings()
    setup_logging(settings)
    migrate.upgrade(settings.database_url)
    if metrics_port is not None:
        serve_worker_metrics(metrics_host, metrics_port)
    asyncio.run(run_worker(build_services(settings, role="worker")))


def serve_worker_metrics(host: str, port: int) -> WSGIServer:
    """This process's counters over plain HTTP, from a daemon thread (a worker has no web app)."""
    try:
        server, _ = prometheus_client.start_http_server(port, addr=host, registry=telemetry.REGISTRY)
    except OSError as exc:
        raise CliError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    log.info("worker metrics on http://%s:%d/metrics", host, port)
    return server


async def run_worker(services: Services) -> None:
    """Run the scheduler loop of `services` until SIGINT or SIGTERM, then close them."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    heap.settle()
    log.info("worker %s started", services.scheduler.node_id)
    try:
        await services.loop.run(stop)
    finally:
        await services.close()
        log.info("worker %s stopped", services.scheduler.node_id)
