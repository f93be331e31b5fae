"""`mediabeat monitors`: saved queries that match new articles as they arrive, and their matches."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Annotated, Any

import typer

from mediabeat.app import Services
from mediabeat.cli.common import CliError, cli_actor, console, print_json, table, when, with_services
from mediabeat.domain.jsonable import jsonable
from mediabeat.domain.monitors import Digest, MonitorMatch, MonitorRecord, NewMonitor
from mediabeat.services.monitors import CreatedMonitor

app = typer.Typer(
    help="Monitors: saved queries matched against every new article, delivered by webhook, mail or Atom feed.",
    no_args_is_help=True,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]
OrgOption = Annotated[str, typer.Option("--org", help="Organisation name")]
NameArg = Annotated[str, typer.Argument(help="The monitor's name (unique in its organisation)")]
EXPORT_COLUMNS = ["match_id", "article_id", "url", "title", "published_at", "matched_at", "delivered_at"]


def feed_path(token: str, public_url: str | None = None) -> str:
    """The secret Atom URL: absolute when MEDIABEAT_PUBLIC_URL is set, else the path on the server."""
    return f"{(public_url or '').rstrip('/')}/monitors/{token}.atom"


def monitor_json(monitor: MonitorRecord, org_names: dict[int, str]) -> dict[str, Any]:
    data = jsonable(monitor)
    data["org"] = org_names.get(monitor.org_id)
    return data


def match_row(match: MonitorMatch) -> dict[str, Any]:
    return {
        "match_id": match.id,
        "article_id": match.article_id,
        "url": match.url,
        "title": match.title,
        "published_at": match.published_at.isoformat() if match.published_at else None,
        "matched_at": match.matched_at.isoformat(),
        "delivered_at": match.delivered_at.isoformat() if match.delivered_at else None,
    }


@app.command("create")
def monitors_create(
    name: NameArg,
    org: OrgOption,
    query: Annotated[str, typer.Option("--query", help='The query: words, "phrases", AND, OR, NOT, -word, ( )')],
    webhook: Annotated[str | None, typer.Option("--webhook", help="POST signed JSON here on new matches")] = None,
    email: Annotated[
        str | None, typer.Option("--email", help="Mail new matches here (needs MEDIABEAT_SMTP_URL)")
    ] = None,
    digest: Annotated[
        Digest, typer.Option("--digest", help="none: each burst; hourly or daily: one digest")
    ] = Digest.NONE,
    cooldown: Annotated[int, typer.Option("--cooldown", help="Seconds between two messages (a burst is one)")] = 300,
    spike: Annotated[bool, typer.Option("--spike-alerts", help="Also alert when the hourly count spikes")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a monitor: every article stored from now on that matches QUERY is recorded and delivered."""
    new = NewMonitor(
        name=name, query=query, webhook_url=webhook, email=email, digest=digest, cooldown_s=cooldown, spike_alerts=spike
    )

    async def body(services: Services) -> tuple[CreatedMonitor, str, str | None]:
        owner = await services.content.orgs.get_by_name(org)
        created = await services.content.monitors.create(owner.id, new, cli_actor())
        return created, owner.name, services.settings.public_url

    created, org_name, public_url = with_services(body)
    monitor = created.monitor
    if as_json:
        extra = {"feed_url": feed_path(created.feed_token, public_url), "webhook_secret": created.webhook_secret}
        print_json({**monitor_json(monitor, {monitor.org_id: org_name}), **extra})
        return
    console.print(f"created monitor {monitor.name!r} (id {monitor.id}) in {org_name!r}")
    # Whole lines, never wrapped: a secret split over two lines is copied wrong.
    where = "" if public_url else " on this service's address (set MEDIABEAT_PUBLIC_URL to print the whole URL)"
    typer.echo(
        f"its Atom feed (keep the URL secret; shown only now): {feed_path(created.feed_token, public_url)}{where}"
    )
    if created.webhook_secret:
        typer.echo(f"webhook signing secret (shown only now): {created.webhook_secret}")


@app.command("list")
def monitors_list(
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation")] = None, as_json: JsonFlag = False
) -> None:
    """List monitors."""

    async def body(services: Services) -> tuple[list[MonitorRecord], dict[int, str]]:
        org_id = None if org is None else (await services.content.orgs.get_by_name(org)).id
        names = {o.id: o.name for o in await services.content.orgs.list()}
        return await services.content.monitors.list(org_id=org_id), names

    monitors, names = with_services(body)
    if as_json:
        print_json([monitor_json(m, names) for m in monitors])
        return
    table(
        ["id", "org", "name", "query", "delivery", "digest", "last delivered"],
        [
            [m.id, names.get(m.org_id), m.name, m.query[:60], _channels(m), m.digest.value, when(m.last_delivered_at)]
            for m in monitors
        ],
    )


def _channels(monitor: MonitorRecord) -> str:
    return ", ".join(c for c, on in (("webhook", monitor.webhook_url), ("email", monitor.email)) if on) or "feed only"


@app.command("matches")
def monitors_matches(
    name: NameArg,
    org: OrgOption,
    as_json: JsonFlag = False,
    export: Annotated[
        str | None, typer.Option("--format", help="Stream every match as csv or jsonl (newest first)")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="How many (without --format)")] = 50,
) -> None:
    """A monitor's matches, newest first; --format csv|jsonl streams them all."""
    if export not in (None, "csv", "jsonl"):
        raise CliError("--format is csv or jsonl", exit_code=2)

    async def body(services: Services) -> list[MonitorMatch]:
        owner = await services.content.orgs.get_by_name(org)
        monitor = await services.content.monitors.by_name(owner.id, name)
        if export is None:
            return await services.content.monitors.matches(monitor.id, limit=limit)
        await _stream(services, monitor.id, export)
        return []

    matches = with_services(body)
    if export is not None:
        return
    if as_json:
        print_json([match_row(m) for m in matches])
        return
    table(
        ["id", "article", "title", "matched"],
        [[m.id, m.article_id, m.title or m.url, when(m.matched_at)] for m in matches],
    )


async def _stream(services: Services, monitor_id: int, form: str) -> None:
    out = sys.stdout
    if form == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
    async for match in services.content.monitors.export(monitor_id):
        row = match_row(match)
        if form == "csv":
            writer.writerow(row)
            out.write(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate()
        else:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    if form == "csv":
        out.write(buffer.getvalue())
    out.flush()


@app.command("delete")
def monitors_delete(name: NameArg, org: OrgOption) -> None:
    """Delete a monitor with its matches."""

    async def body(services: Services) -> MonitorRecord:
        owner = await services.content.orgs.get_by_name(org)
        monitor = await services.content.monitors.by_name(owner.id, name)
        return await services.content.monitors.delete(monitor.id, cli_actor())

    monitor = with_services(body)
    console.print(f"deleted monitor {monitor.name!r}")


@app.command("feed-url")
def monitors_feed_url(name: NameArg, org: OrgOption) -> None:
    """Give the monitor a new secret Atom feed URL (the old one stops working) and print it."""

    async def body(services: Services) -> str:
        owner = await services.content.orgs.get_by_name(org)
        monitor = await services.content.monitors.by_name(owner.id, name)
        token = await services.content.monitors.rotate_feed_token(monitor.id, cli_actor())
        return feed_path(token, services.settings.public_url)

    console.print(with_services(body))
