"""`mediabeat demo-site` (the local news site) and `mediabeat demo remove` (drop the demo organisation)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from mediabeat.app import Services
from mediabeat.cli.common import CliError, cli_actor, with_services
from mediabeat.demo import content as demo_content
from mediabeat.demo import feeds as demo_feeds
from mediabeat.domain.content import Actor, NotDemoOrg, OrgRecord
from mediabeat.domain.scheduler import OverlapForbidden
from mediabeat.scheduler.registry import UnknownHandler
from mediabeat.scheduler.service import TaskNotFound
from mediabeat.settings import load_settings

if TYPE_CHECKING:  # the web server and the site load when one is served, not when the CLI starts
    import uvicorn

DEMO_ORG = "demo"
DEMO_LABEL = "Demo news (local)"
DEMO_SITE = demo_content.DemoSiteConfig(article_interval_s=300, feed_size=30)
log = logging.getLogger("mediabeat.demo")

app = typer.Typer(help="The demo organisation that `serve --demo` creates.", no_args_is_help=True)


def demo_site(
    host: Annotated[str, typer.Option(help="Loopback address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0 picks a free one)")] = 8001,
    extra_hosts: Annotated[
        str, typer.Option(help="More addresses to listen on, comma-separated, e.g. 127.0.0.2,127.0.0.3")
    ] = "",
    hosts: Annotated[
        int,
        typer.Option(
            min=0,
            max=250,
            help="Also listen on 127.0.0.2 .. 127.0.0.N (N addresses in all; each is another outlet)",
        ),
    ] = 0,
    article_interval: Annotated[int, typer.Option(min=1, help="Seconds between new articles in a section")] = 120,
    feed_size: Annotated[int, typer.Option(min=1, max=500, help="Entries per feed")] = 30,
    wire_feeds: Annotated[int, typer.Option(min=0, max=100_000, help="Extra feeds wire-0..N-1 (benchmarks)")] = 0,
    latency_ms: Annotated[int, typer.Option(min=0, help="Delay every response by this much")] = 0,
    seed: Annotated[int, typer.Option(help="Content seed: the same seed serves the same articles")] = 1,
    allow_public: Annotated[
        bool, typer.Option("--allow-public", help="Allow listening on a non-loopback address")
    ] = False,
) -> None:
    """Serve the local news site: deterministic feeds and articles, plus hostile feeds, on loopback."""
    import uvicorn

    from mediabeat.demo.site import create_demo_app

    addresses = listen_addresses(host, extra_hosts, hosts)
    refuse_public(addresses, allow_public)
    sockets = bind_sockets(addresses, port)
    config = demo_content.DemoSiteConfig(
        seed=seed, article_interval_s=article_interval, feed_size=feed_size, wire_feeds=wire_feeds
    )
    bound_port = sockets[0].getsockname()[1]
    for address in addresses:
        root = f"http://{_url_host(address)}:{bound_port}"
        print(f"demo site on {root}/  feeds: {root}/feeds.opml  hostile feeds: {root}/hostile.opml", flush=True)
    server_config = uvicorn.Config(
        create_demo_app(config, latency_s=latency_ms / 1000),
        host=addresses[0],
        port=bound_port,
        log_level=load_settings().log_level.lower(),
        access_log=False,
    )
    uvicorn.Server(server_config).run(sockets=sockets)


def listen_addresses(host: str, extra_hosts: str, hosts: int) -> list[str]:
    """The addresses to listen on, in order and without repeats."""
    wanted = [host, *(h.strip() for h in extra_hosts.split(",") if h.strip())]
    wanted += [f"127.0.0.{i}" for i in range(2, hosts + 1)]
    return list(dict.fromkeys(wanted))


def refuse_public(addresses: list[str], allow_public: bool) -> None:
    """The demo site serves hostile content: keep it on loopback unless the user insists."""
    for address in addresses:
        if allow_public or address == "localhost":
            continue
        try:
            loopback = ipaddress.ip_address(address).is_loopback
        except ValueError:
            raise CliError(f"{address!r} is not an IP address; use a loopback address such as 127.0.0.2", 2) from None
        if not loopback:
            raise CliError(
                f"{address} is not a loopback address: the demo site serves hostile content and listens on "
                "127.0.0.0/8 or ::1 only (pass --allow-public to override)",
                2,
            )


def bind_sockets(addresses: list[str], port: int) -> list[socket.socket]:
    """Bind every address now, so a busy port fails at once; port 0 picks one port shared by all if possible."""
    sockets: list[socket.socket] = []
    try:
        for address in addresses:
            wanted = port or (sockets[0].getsockname()[1] if sockets else 0)
            sockets.append(_bind(address, wanted))
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise CliError(f"cannot listen on {address}:{port}: {exc.strerror or exc}") from None
    return sockets


def _bind(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


# ---- the demo organisation -------------------------------------------------------------------


async def ensure_demo_org(
    services: Services, *, base_url: str, config: demo_content.DemoSiteConfig, actor: Actor
) -> tuple[OrgRecord, int]:
    """Create (or bring up to date) the demo organisation with one feed per demo section: (the org, its feeds)."""
    wanted: list[tuple[str, str | None]] = [
        (base_url + demo_feeds.feed_path(config, slug), f"Demo news (local): {config.section_title(slug)}")
        for slug in config.section_names()
    ]
    return await services.content.demo.sync(DEMO_ORG, wanted, actor)


@app.command("remove")
def remove() -> None:
    """Delete the demo organisation with all its feeds, crawl jobs and articles."""

    removed = with_services(lambda s: s.content.demo.remove(DEMO_ORG, cli_actor()))
    if removed is None:
        print("no demo organisation: nothing to remove")
        return
    print(f"removed the demo organisation with {removed[0]} feeds and {removed[1]} articles")


# ---- `serve --demo`: the site, the org and a first crawl inside the service process ---------------


def _embedded_server(config: uvicorn.Config) -> uvicorn.Server:
    """A uvicorn server that leaves signals to the main server of the process."""
    import uvicorn

    class EmbeddedServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return EmbeddedServer(config)


def bind_demo_socket(port: int) -> socket.socket:
    """127.0.0.1:`port` for the demo site, or a free port when that one is taken."""
    try:
        return _bind("127.0.0.1", port)
    except OSError:
        if port == 0:
            raise
        log.warning("port %s is busy: the demo site takes a free port instead", port)
        return _bind("127.0.0.1", 0)


async def serve_with_demo(main: uvicorn.Server, services: Services, demo_socket: socket.socket) -> None:
    """Run the service and the demo site in one loop; the demo org exists before the scheduler starts."""
    import uvicorn

    from mediabeat.demo.site import create_demo_app

    demo = _embedded_server(
        uvicorn.Config(
            create_demo_app(DEMO_SITE),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
    )
    base_url = f"http://127.0.0.1:{demo_socket.getsockname()[1]}"
    demo_task = asyncio.create_task(demo.serve(sockets=[demo_socket]), name="demo-site")
    first_crawl: asyncio.Task[None] | None = None
    try:
        while not demo.started:
            if demo_task.done():
                await demo_task
                raise CliError("the demo site did not start")
            await asyncio.sleep(0.02)
        try:
            org, feed_count = await ensure_demo_org(services, base_url=base_url, config=DEMO_SITE, actor=cli_actor())
        except NotDemoOrg as exc:
            raise CliError(str(exc)) from None
        print(
            f"demo: the local news site is on {base_url}/ and the organisation {DEMO_ORG!r} ({DEMO_LABEL}) "
            f"follows its {feed_count} feeds; remove it with `mediabeat demo remove`",
            flush=True,
        )
        first_crawl = asyncio.create_task(_first_crawl(main, services, org.id), name="demo-first-crawl")
        await main.serve()
    finally:
        if first_crawl is not None:
            first_crawl.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first_crawl
        demo.should_exit = True
        await demo_task


async def _first_crawl(main: uvicorn.Server, services: Services, org_id: int) -> None:
    """Fetch the feeds, then crawl the articles, once at start, so that articles show within a minute."""
    while not main.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.05)
    if await _run_task_once(services, "hourly-rss-fetch") is None:
        return
    for _ in range(4):  # a first fetch queues more jobs than one crawl batch holds
        if main.should_exit:  # shutting down: start nothing new
            return
        result = await _run_task_once(services, "crawl-queue")
        if not _count(result, "succeeded"):
            break
    stored = await services.content.articles.count(org_id=org_id)
    print(
        f"demo: first fetch and crawl done, {stored} articles stored: `mediabeat articles list --org demo`", flush=True
    )


def _count(result: dict[str, object] | None, key: str) -> int:
    value = (result or {}).get(key)
    return value if isinstance(value, int) else 0


async def _run_task_once(services: Services, name: str) -> dict[str, object] | None:
    """Run a task now and return its result; None when it cannot run or did not succeed."""
    for _ in range(120):
        try:
            run = await services.scheduler.run_now_and_wait(name, triggered_by="serve --demo")
        except OverlapForbidden:  # the scheduler loop is running it already: wait for that run
            await asyncio.sleep(1)
            continue
        except (TaskNotFound, UnknownHandler) as exc:
            log.warning("demo: cannot run %s: %s", name, exc)
            return None
        if run.status == "skipped":  # nothing to do (an empty queue): its error already says "skipped: ..."
            log.info("demo: %s %s", name, run.error)
            return None
        if run.status != "succeeded":
            log.warning("demo: %s %s: %s", name, run.status, run.error)
            return None
        log.info("demo: %s succeeded: %s", name, run.result)
        return dict(run.result or {})
    return None
