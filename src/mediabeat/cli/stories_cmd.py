"""`mediabeat stories`: story clusters (syndicated copies grouped as one story): list, show, rebuild."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mediabeat.app import Services
from mediabeat.cli.common import cli_actor, console, print_json, table, when, with_services
from mediabeat.domain.jsonable import jsonable
from mediabeat.domain.stories import RebuildResult, StoryDetail, StorySummary

app = typer.Typer(
    help="Story clusters: copies of one story (wire reprints, edited copies, other headlines) grouped.",
    no_args_is_help=True,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]


def story_json(story: StorySummary) -> dict[str, Any]:
    return jsonable(story)


@app.command("list")
def stories_list(
    org: Annotated[str, typer.Option("--org", help="Organisation name")],
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, largest first")] = 50,
    min_size: Annotated[int, typer.Option("--min-size", min=1, help="Only stories with this many articles")] = 2,
    as_json: JsonFlag = False,
) -> None:
    """List an organisation's stories, largest first (by default those with at least two articles)."""

    async def body(services: Services) -> list[StorySummary]:
        org_id = (await services.content.orgs.get_by_name(org)).id
        return await services.content.stories.list(org_id=org_id, limit=limit, min_size=min_size)

    rows = with_services(body)
    if as_json:
        print_json([story_json(s) for s in rows])
        return
    table(
        ["id", "size", "outlets", "sites", "first seen", "last seen", "title"],
        [[s.id, s.size, s.outlets, s.sites, when(s.first_seen), when(s.last_seen), (s.title or "")[:70]] for s in rows],
    )


@app.command("show")
def stories_show(story_id: Annotated[int, typer.Argument(help="Story id")], as_json: JsonFlag = False) -> None:
    """Show one story with its articles, earliest first."""
    detail: StoryDetail = with_services(lambda s: s.content.stories.get(story_id))
    if as_json:
        print_json({**story_json(detail.story), "members": [jsonable(m) for m in detail.members]})
        return
    story = detail.story
    console.print(f"[bold]{story.title or '(no title)'}[/bold]", highlight=False)
    console.print(f"{story.size} articles, {story.outlets} outlets, {story.sites} sites", highlight=False)
    table(
        ["id", "published", "title", "url"],
        [[m.id, when(m.published_at), (m.title or "")[:60], m.url] for m in detail.members],
    )


@app.command("rebuild")
def stories_rebuild(
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation (default: every one)")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Keep existing clusters; only place articles that have none")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Cluster existing articles afresh (after upgrading, or after a change of the clustering parameters).

    Works in batches of 200 articles a transaction, beside a running service: articles that
    workers store meanwhile are clustered by them. Stopped half-way, `--resume` carries on.
    """

    async def body(services: Services) -> list[RebuildResult]:
        org_id = None if org is None else (await services.content.orgs.get_by_name(org)).id
        return await services.content.stories.rebuild(cli_actor(), org_id=org_id, resume=resume)

    results = with_services(body)
    if as_json:
        print_json([jsonable(r) for r in results])
        return
    for r in results:
        console.print(f"organisation {r.org_id}: {r.articles} articles clustered, {r.clusters} stories with copies")
