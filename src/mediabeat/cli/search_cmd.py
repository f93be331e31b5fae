"""`mediabeat articles search`: full-text search over articles, ranked, or every match exported as CSV or JSON Lines."""

from __future__ import annotations

import enum
import sys
from contextlib import aclosing
from typing import Annotated, Any

import typer

from mediabeat.app import Services
from mediabeat.cli.common import console, print_json, when, with_services
from mediabeat.domain.search import ADMIN_READER, SearchHit, marked_snippet
from mediabeat.services.search import ExportFormat, export_lines

TEXT_MARKS = ("«", "»")  # around matched words in a snippet printed as text


class OutputFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"
    CSV = "csv"
    JSONL = "jsonl"


# The fields of a hit in `--json` (SearchHit.plain() has a few more: the API's ArticleSummary).
JSON_FIELDS = ("id", "org_id", "url", "title", "published_at", "snippet", "highlights", "score")


def hit_json(hit: SearchHit) -> dict[str, Any]:
    """A hit for scripts: `snippet` is plain text, `highlights` the [start, end) offsets of the matches in it."""
    plain = hit.plain()
    item = {name: plain[name] for name in JSON_FIELDS}
    item["published_at"] = hit.published_at.isoformat() if hit.published_at else None
    return {**item, "cluster_id": hit.cluster_id, "cluster_size": hit.cluster_size}


def articles_search(
    query: Annotated[
        str, typer.Argument(help="The query, e.g. '\"climate change\" NEAR/5 coal -opinion site:bbc.co.uk'")
    ],
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation (default: every one)")] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, max=10_000, help="How many results (default 20; exports: every match)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts (same as --format json)")] = False,
    fmt: Annotated[
        OutputFormat,
        typer.Option("--format", help="text, json (ranked), or csv / jsonl: every match, newest first, streamed"),
    ] = OutputFormat.TEXT,
    collapse: Annotated[
        bool,
        typer.Option(
            "--collapse", help="One result per story: the best-ranked copy, with how many outlets carry the story"
        ),
    ] = False,
) -> None:
    """Search articles' title and text; docs/search.md describes the query language. A bad query exits 2."""
    if as_json:
        fmt = OutputFormat.JSON
    if fmt in (OutputFormat.CSV, OutputFormat.JSONL):
        with_services(lambda s: _export(s, query, org, limit, ExportFormat(fmt.value)))
        return
    hits = with_services(lambda s: _search(s, query, org, limit or 20, collapse=collapse))
    if fmt is OutputFormat.JSON:
        print_json([hit_json(h) for h in hits])
        return
    if not hits:
        console.print("no articles match")
    for hit in hits:
        console.print(f"[bold]{hit.id}[/bold]  {hit.score:.3f}  {when(hit.published_at)}  ", end="")
        console.print(hit.title or "(no title)", markup=False, highlight=False)
        console.print("    " + marked_snippet(hit.snippet, *TEXT_MARKS), markup=False, highlight=False)
        console.print(f"    {hit.url}", markup=False, highlight=False)
        if collapse and hit.cluster_size > 1:
            more = hit.cluster_size - 1
            console.print(
                f"    and {more} more cop{'y' if more == 1 else 'ies'} of this story: stories show {hit.cluster_id}"
            )


async def _org_id(services: Services, org: str | None) -> int | None:
    return None if org is None else (await services.content.orgs.get_by_name(org)).id


async def _search(
    services: Services, query: str, org: str | None, limit: int, *, collapse: bool = False
) -> list[SearchHit]:
    search = services.content.search
    search.parse(query)  # a bad query is reported before the organisation is looked up
    org_id = await _org_id(services, org)
    return await search.search(query, reader=ADMIN_READER, org_id=org_id, limit=limit, collapse=collapse)


async def _export(services: Services, query: str, org: str | None, limit: int | None, fmt: ExportFormat) -> None:
    search = services.content.search
    search.parse(query)
    rows = search.export(query, reader=ADMIN_READER, org_id=await _org_id(services, org))
    written = 0
    async with aclosing(export_lines(rows, fmt)) as lines:
        async for line in lines:
            sys.stdout.write(line)
            written += 1
            if limit is not None and written >= limit + (fmt is ExportFormat.CSV):
                break
    sys.stdout.flush()
