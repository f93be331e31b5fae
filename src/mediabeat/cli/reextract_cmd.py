"""`mediabeat articles reextract`: extract articles again from their kept raw HTML."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

import typer

from mediabeat.app import Services
from mediabeat.cli.common import CliError, console, print_json, with_services
from mediabeat.domain.content import ReextractCounts, ReextractFilter


def _since(text: str | None) -> datetime | None:
    """--since as an aware datetime: a date (midnight UTC) or an ISO 8601 date-time (UTC unless it says otherwise)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(
            f"--since {text!r} is not a date: give one such as 2026-01-31 or 2026-01-31T12:00:00+00:00", exit_code=2
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def articles_reextract(
    since: Annotated[
        str | None, typer.Option("--since", help="Only articles fetched at or after this date (2026-01-31, UTC)")
    ] = None,
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation (its name)")] = None,
    feed: Annotated[int | None, typer.Option("--feed", min=1, help="Only the articles of this feed id")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many articles")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON")] = False,
) -> None:
    """Extract articles again from their kept raw HTML with this version's extraction.

    Updates title, text, author, dates, language, summary, canonical URL and the search index.

    Story clusters and monitors are not run again (run `mediabeat stories rebuild` after it).

    Only pages crawled with MEDIABEAT_CRAWLER_KEEP_RAW_HTML on are kept; the others are counted.
    """
    query_since = _since(since)

    def show(counts: ReextractCounts) -> None:
        if not as_json:
            console.print(f"... {counts.reextracted} re-extracted, {counts.unchanged} unchanged", highlight=False)

    async def body(services: Services) -> ReextractCounts:
        org_id = None if org is None else (await services.content.orgs.get_by_name(org)).id
        query = ReextractFilter(since=query_since, org_id=org_id, feed_id=feed, limit=limit)
        return await services.content.articles.reextract(query, progress=show)

    counts = with_services(body)
    if as_json:
        print_json(asdict(counts))
        return
    console.print(
        f"{counts.reextracted} re-extracted, {counts.unchanged} unchanged, {counts.failed} failed to extract, "
        f"{counts.no_raw_html} without kept raw HTML",
        highlight=False,
    )
