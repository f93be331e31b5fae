"""`mediabeat feeds sitemaps`: a site's news sitemaps, found through its robots.txt, and adding them as feeds."""

from __future__ import annotations

from typing import Annotated

import typer

from mediabeat.app import Services
from mediabeat.cli.common import cli_actor, console, print_json, table, with_services
from mediabeat.domain.content import FeedRecord
from mediabeat.services.sitemaps import SitemapFinding

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]


def feeds_sitemaps(
    site: Annotated[str, typer.Argument(help="The site's address, e.g. https://news.example.org")],
    org: Annotated[str | None, typer.Option("--org", help="Add the news sitemaps to this organisation")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List the sitemaps a site's robots.txt names and which are news sitemaps; with --org, add those as feeds."""

    async def body(services: Services) -> tuple[list[SitemapFinding], list[tuple[FeedRecord, bool]]]:
        sitemaps = services.content.sitemaps
        if org is None:
            return await sitemaps.find(site), []
        owner = await services.content.orgs.get_by_name(org)
        return await sitemaps.add_news_sitemaps(owner.id, site, cli_actor())

    found, added = with_services(body)
    if as_json:
        print_json(
            {
                "sitemaps": [{"url": f.url, "news_entries": f.news_entries, "reason": f.reason} for f in found],
                "feeds": [{"id": feed.id, "url": feed.url, "created": created} for feed, created in added],
            }
        )
        return
    if not found:
        console.print("robots.txt names no sitemap")
        return
    table(
        ["sitemap", "news entries", "news sitemap?"],
        [[f.url, f.news_entries, "yes" if f.reason is None else f"no: {f.reason}"] for f in found],
    )
    for feed, created in added:
        console.print(f"{'added' if created else 'already there'}: feed {feed.id} {feed.url}")
