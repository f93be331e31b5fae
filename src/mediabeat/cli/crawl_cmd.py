"""`mediabeat orgs|feeds|articles|jobs`: organisations, their feeds, the crawl queue and the articles."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mediabeat.app import Services
from mediabeat.cli.common import CliError, cli_actor, console, exit_status, print_json, table, when, with_services
from mediabeat.db.tables import MAX_PRIORITY, MIN_PRIORITY
from mediabeat.domain.content import (
    ArticleFilter,
    FeedAddition,
    FeedFetchReport,
    FeedRecord,
    JobFilter,
    JobNotFailed,
    JobNotFound,
    JobStatus,
    OpmlImport,
    OrgRecord,
    OrgSummary,
)
from mediabeat.domain.jsonable import jsonable
from mediabeat.domain.stories import ClusterMembership
from mediabeat.schedule.freshness import human_interval

orgs_app = typer.Typer(help="Organisations: create, list, delete.", no_args_is_help=True)
feeds_app = typer.Typer(
    help="Feeds: add (finds a site's feeds), fetch, show, list, OPML import/export, enable, disable, delete.",
    no_args_is_help=True,
)
articles_app = typer.Typer(help="Articles collected by crawl-queue.", no_args_is_help=True)
jobs_app = typer.Typer(help="The crawl-job queue: list and retry.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]
OrgOption = Annotated[str, typer.Option("--org", help="Organisation name")]
OptionalOrg = Annotated[str | None, typer.Option("--org", help="Only this organisation")]


async def _org_id(services: Services, name: str | None) -> int | None:
    return None if name is None else (await services.content.orgs.get_by_name(name)).id


# --- orgs -------------------------------------------------------------------------------------------


@orgs_app.command("create")
def orgs_create(name: Annotated[str, typer.Argument(help="A unique name")], as_json: JsonFlag = False) -> None:
    """Create an organisation."""

    org = with_services(lambda s: s.content.orgs.create(name, cli_actor()))
    if as_json:
        print_json(jsonable(org))
    else:
        console.print(f"created organisation {org.name!r} (id {org.id})")


@orgs_app.command("list")
def orgs_list(as_json: JsonFlag = False) -> None:
    """List organisations with their feed counts."""

    rows: list[OrgSummary] = with_services(lambda s: s.content.orgs.list_with_feed_counts())
    if as_json:
        print_json([{**jsonable(r.org), "feeds": r.feeds} for r in rows])
        return
    table(
        ["id", "name", "feeds", "demo", "created"],
        [[r.org.id, r.org.name, r.feeds, "yes" if r.org.is_demo else "", when(r.org.created_at)] for r in rows],
    )


@orgs_app.command("delete")
def orgs_delete(
    name: Annotated[str, typer.Argument(help="Organisation name")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Delete an organisation with all its feeds, jobs and articles."""
    if not yes and not typer.confirm(f"Delete organisation {name!r} with its feeds, jobs and articles?", default=False):
        raise CliError("not deleted: confirm, or pass --yes")

    async def body(services: Services) -> OrgRecord:
        org = await services.content.orgs.get_by_name(name)
        return await services.content.orgs.delete(org.id, cli_actor())

    with_services(body)
    console.print(f"deleted organisation {name!r}")


# --- feeds ------------------------------------------------------------------------------------------


def feed_json(feed: FeedRecord, org_names: dict[int, str]) -> dict[str, Any]:
    return {**jsonable(feed), "org": org_names.get(feed.org_id)}


@feeds_app.command("add")
def feeds_add(
    url: Annotated[str, typer.Argument(help="A feed's URL (RSS, Atom, JSON Feed) or a site's address")],
    org: OrgOption,
    title: Annotated[str | None, typer.Option(help="A title (default: the feed's own)")] = None,
    no_check: Annotated[
        bool, typer.Option("--no-check", help="Add the URL as it is, without fetching it (e.g. a feed down now)")
    ] = False,
    all_feeds: Annotated[
        bool,
        typer.Option(
            "--all", help="A site with several feeds or news sitemaps: add them all (default: the first feed it names)"
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add a feed to an organisation: the URL is fetched once and checked; a site's address finds its feeds.

    A site's page is searched for <link rel="alternate"> feeds, then the usual paths (/feed, /rss.xml, ...),
    and its robots.txt Sitemap: lines for news sitemaps: those are named (added with --all, or when the
    site has no feed). Adding a feed the organisation already has changes nothing.
    """

    async def body(services: Services) -> tuple[FeedAddition, OrgRecord]:
        owner = await services.content.orgs.get_by_name(org)
        done = await services.content.feeds.add_address(
            owner.id, url, cli_actor(), title=title, check=not no_check, all_feeds=all_feeds
        )
        return done, owner

    done, owner = with_services(body)
    if as_json:
        _print_added_json(done, owner)
        return
    checks = {f.url: f for f in done.found}
    for feed, created in done.feeds:
        check = checks.get(feed.url)
        about = f" ({check.title or 'untitled'}, {check.entries} entries)" if check else " (not checked)"
        if created:
            console.print(f"added feed {feed.id} to {owner.name!r}: {feed.url}{about}", markup=False)
        else:
            console.print(f"{owner.name!r} already has this feed (id {feed.id}): {feed.url}", markup=False)
    _print_sitemaps(done)
    if done.also_found:
        console.print(
            f"the site names {len(done.also_found)} more feed(s), not added (use --all): "
            + ", ".join(done.also_found[:5]),
            markup=False,
        )


def _print_added_json(done: FeedAddition, owner: OrgRecord) -> None:
    first, created = done.feeds[0]
    names = {owner.id: owner.name}
    print_json(
        {
            **feed_json(first, names),
            "created": created,
            "checked": done.checked,
            "added": [{**feed_json(f, names), "created": c} for f, c in done.feeds],
            "found": [jsonable(f) for f in done.found],
            "also_found": done.also_found,
            "refused": [{"url": u, "reason": r} for u, r in done.refused],
            "sitemaps": [jsonable(m) for m in done.sitemaps],
            "robots_note": done.robots_note,
        }
    )


def _print_sitemaps(done: FeedAddition) -> None:
    """What the site's robots.txt `Sitemap:` lines gave: news sitemaps (with entries) and the others, with why."""
    if done.robots_note:
        console.print(done.robots_note, markup=False)
    for found in done.sitemaps:
        what = f"a news sitemap, {found.news_entries} entries" if found.reason is None else f"no news: {found.reason}"
        console.print(f"robots.txt lists {found.url} ({what})", markup=False)


@feeds_app.command("fetch")
def feeds_fetch(feed_id: Annotated[int, typer.Argument(help="Feed id")], as_json: JsonFlag = False) -> None:
    """Fetch one feed now, whatever its schedule: queue its new entries and show its next fetch and why."""
    report: FeedFetchReport = with_services(lambda s: s.content.feeds.fetch_now(feed_id, cli_actor()))
    feed = report.feed
    if as_json:
        print_json(
            {
                "feed": jsonable(feed),
                "outcome": report.outcome,
                "status": report.status,
                "error": report.error,
                "entries": report.entries,
                "new_jobs": report.new_jobs,
                "next_fetch_at": jsonable(feed.next_fetch_at),
                "interval_s": feed.fetch_interval_s,
                "interval_reason": feed.interval_reason,
            }
        )
        if report.outcome in ("failed", "dormant", "disabled"):
            raise typer.Exit(1)
        return
    console.print(f"feed {feed.id}: {report.outcome} ({report.status or '-'}) {feed.url}", markup=False)
    if report.error:
        console.print(f"error: {report.error}", markup=False)
    console.print(f"{report.entries} entries, {report.new_jobs} new crawl jobs queued", markup=False)
    if feed.active:
        console.print(
            f"next fetch {when(feed.next_fetch_at)} (every {interval_text(feed)}: {feed.interval_reason or '-'})",
            markup=False,
        )
    else:
        console.print(f"disabled: {feed.disabled_reason}", markup=False)
    if report.outcome in ("failed", "dormant", "disabled"):
        raise typer.Exit(1)


def interval_text(feed: FeedRecord) -> str:
    return human_interval(feed.fetch_interval_s) if feed.fetch_interval_s else "-"


@feeds_app.command("import")
def feeds_import(
    file: Annotated[Path, typer.Argument(help="An OPML file (what feed readers export)", exists=False)],
    org: OrgOption,
    as_json: JsonFlag = False,
) -> None:
    """Add every feed of an OPML file; feeds the organisation already has are left as they are."""
    try:
        data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror or exc}", exit_code=2) from None

    async def body(services: Services) -> OpmlImport:
        owner = await services.content.orgs.get_by_name(org)
        return await services.content.feeds.import_opml(owner.id, data, cli_actor())

    try:
        done = with_services(body)
    except CliError as exc:
        raise CliError(f"{file}: {exc}", exit_code=exc.exit_code) from None
    skipped = done.skipped
    summary = {"in_file": done.listed, "added": done.added, "already_there": done.existing, "invalid": skipped}
    if as_json:
        print_json(summary)
        return
    console.print(
        f"imported {done.added} new feeds into {org!r}; {done.existing} already there"
        + (f"; {len(skipped)} skipped (not a feed URL): {', '.join(skipped[:5])}" if skipped else "")
    )


@feeds_app.command("export")
def feeds_export(
    org: OrgOption,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout)")] = None,
) -> None:
    """Print an organisation's feeds as OPML."""

    async def body(services: Services) -> bytes:
        owner = await services.content.orgs.get_by_name(org)
        return await services.content.feeds.export_opml(owner.id)

    data = with_services(body)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)


@feeds_app.command("list")
def feeds_list(org: OptionalOrg = None, as_json: JsonFlag = False) -> None:
    """List feeds with their last status, failures and next fetch."""

    async def body(services: Services) -> tuple[list[FeedRecord], dict[int, str]]:
        org_id = await _org_id(services, org)
        names = {o.id: o.name for o in await services.content.orgs.list()}
        return await services.content.feeds.list(org_id=org_id), names

    feeds, names = with_services(body)
    if as_json:
        print_json([feed_json(f, names) for f in feeds])
        return
    table(
        ["id", "org", "url", "active", "priority", "last status", "failures", "last fetch", "next fetch", "interval"],
        [
            [
                f.id,
                names.get(f.org_id, f.org_id),
                f.url,
                _active_text(f),
                f.priority,
                f.last_status or "-",
                f.consecutive_failures,
                when(f.last_fetched_at),
                when(f.next_fetch_at) if f.active else "-",
                f"{interval_text(f)}: {f.interval_reason}" if f.interval_reason else interval_text(f),
            ]
            for f in feeds
        ],
    )


def _active_text(f: FeedRecord) -> str:
    if not f.active:
        return f"no ({f.disabled_reason})" if f.disabled_reason else "no"
    return "dormant" if f.dormant_since else "yes"


@feeds_app.command("show")
def feeds_show(feed_id: Annotated[int, typer.Argument(help="Feed id")], as_json: JsonFlag = False) -> None:
    """Show one feed: its state, its interval in effect and why, its next fetch."""

    async def body(services: Services) -> tuple[FeedRecord, dict[int, str]]:
        feed = await services.content.feeds.get(feed_id)
        return feed, {o.id: o.name for o in await services.content.orgs.list()}

    feed, names = with_services(body)
    if as_json:
        print_json(feed_json(feed, names))
        return
    rows = [
        ("url", feed.url),
        ("title", feed.title or "-"),
        ("org", names.get(feed.org_id, str(feed.org_id))),
        ("active", _active_text(feed)),
        ("last status", f"{feed.last_status or '-'} {when(feed.last_fetched_at)}"),
        ("last error", feed.last_error or "-"),
        ("failures", str(feed.consecutive_failures)),
        ("interval", interval_text(feed)),
        ("why", feed.interval_reason or "-"),
        ("next fetch", when(feed.next_fetch_at) if feed.active else "-"),
        ("entries a week", "-" if feed.entries_per_week is None else str(feed.entries_per_week)),
        ("entries listed", "-" if feed.window_entries is None else f"{feed.window_entries} at the last parse"),
        ("new at last fetch", "-" if feed.last_new_entries is None else str(feed.last_new_entries)),
    ]
    table(["field", "value"], [list(r) for r in rows])


def _set_active(feed_id: int, active: bool, reason: str | None) -> None:
    feed = with_services(lambda s: s.content.feeds.change(feed_id, cli_actor(), active=active, reason=reason))
    console.print(f"feed {feed.id} {'enabled' if active else 'disabled'}: {feed.url}")


@feeds_app.command("enable")
def feeds_enable(feed_id: Annotated[int, typer.Argument(help="Feed id")]) -> None:
    """Enable a feed again (clears its failures and backoff)."""
    _set_active(feed_id, True, None)


@feeds_app.command("disable")
def feeds_disable(
    feed_id: Annotated[int, typer.Argument(help="Feed id")],
    reason: Annotated[str | None, typer.Option(help="Why (shown in feeds list)")] = None,
) -> None:
    """Stop fetching a feed."""
    _set_active(feed_id, False, reason)


@feeds_app.command("priority")
def feeds_priority(
    feed_id: Annotated[int, typer.Argument(help="Feed id")],
    priority: Annotated[
        int, typer.Argument(min=MIN_PRIORITY, max=MAX_PRIORITY, help="0 (the default) to 9: higher is crawled sooner")
    ],
) -> None:
    """Set a feed's priority: its articles, including those already queued, are crawled before lower ones."""

    feed = with_services(lambda s: s.content.feeds.change(feed_id, cli_actor(), priority=priority))
    console.print(f"feed {feed.id} has priority {feed.priority}: {feed.url}")


@feeds_app.command("delete")
def feeds_delete(feed_id: Annotated[int, typer.Argument(help="Feed id")]) -> None:
    """Remove a feed (its articles stay)."""
    with_services(lambda s: s.content.feeds.delete(feed_id, cli_actor()))
    console.print(f"deleted feed {feed_id}")


# --- articles ---------------------------------------------------------------------------------------


@articles_app.command("list")
def articles_list(
    org: OptionalOrg = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List the newest articles."""

    async def body(services: Services) -> list[Any]:
        org_id = await _org_id(services, org)
        return await services.content.articles.list(ArticleFilter(org_id=org_id, limit=limit))

    rows = with_services(body)
    if as_json:
        print_json([jsonable(a) for a in rows])
        return
    table(
        ["id", "title", "author", "published", "lang", "words", "url"],
        [
            [
                a.id,
                (a.title or "")[:60],
                (a.author or "")[:30],
                when(a.published_at),
                a.language or "",
                len((a.text or "").split()),
                a.url,
            ]
            for a in rows
        ],
    )


@articles_app.command("show")
def articles_show(article_id: Annotated[int, typer.Argument(help="Article id")], as_json: JsonFlag = False) -> None:
    """Show one article with its text, and its story: cluster_id and cluster_size (copies found, itself included)."""

    async def body(services: Services) -> tuple[Any, ClusterMembership | None]:
        article = await services.content.articles.get(article_id)
        return article, await services.content.stories.membership(article.id)

    article, story = with_services(body)
    cluster = {
        "cluster_id": story.cluster_id if story else None,
        "cluster_size": story.cluster_size if story else None,
    }
    if as_json:
        print_json({**jsonable(article), **cluster})
        return
    console.print(f"[bold]{article.title or '(no title)'}[/bold]\n{article.url}")
    if story is not None and story.cluster_size > 1:
        console.print(f"the same story in {story.cluster_size} articles: mediabeat stories show {story.cluster_id}")
    console.print(f"{article.author or ''} {when(article.published_at)} {article.language or ''}\n")
    console.print(article.text or "", markup=False, highlight=False)


# --- jobs -------------------------------------------------------------------------------------------


@jobs_app.command("list")
def jobs_list(
    status: Annotated[JobStatus | None, typer.Option(help="queued, running, succeeded or failed")] = None,
    org: OptionalOrg = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="How many, newest first")] = 1000,
    as_json: JsonFlag = False,
) -> None:
    """List crawl jobs, newest first."""

    async def body(services: Services) -> list[Any]:
        org_id = await _org_id(services, org)
        return await services.content.jobs.list(JobFilter(status=status, org_id=org_id, limit=limit))

    rows = with_services(body)
    if as_json:
        print_json([jsonable(j) for j in rows])
        return
    table(
        ["id", "status", "attempts", "run after", "url", "last error"],
        [
            [j.id, j.status, f"{j.attempts}/{j.max_attempts}", when(j.run_after), j.url, (j.last_error or "")[:60]]
            for j in rows
        ],
    )


@jobs_app.command("retry")
def jobs_retry(
    job_ids: Annotated[list[int] | None, typer.Argument(help="Failed job ids")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Every failed job")] = False,
) -> None:
    """Queue failed jobs again with a fresh attempt budget.

    Each id named must be a failed job: an id that names no job exits 2, a job that is not
    failed exits 1, after the others are queued again.
    """
    if not job_ids and not failed:
        raise CliError("name job ids, or pass --failed for every failed job", exit_code=2)
    refused: list[JobNotFound | JobNotFailed] = []

    async def retry_each(services: Services) -> int:
        count = 0
        for job_id in job_ids or []:
            try:
                count += await services.content.jobs.retry_one(job_id, cli_actor())
            except (JobNotFound, JobNotFailed) as exc:
                refused.append(exc)
        return count

    if failed:
        count = with_services(lambda s: s.content.jobs.retry_failed(None, cli_actor())).requeued
    else:
        count = with_services(retry_each)
    console.print(f"queued {count} failed job{'s' if count != 1 else ''} again")
    if refused:
        raise CliError("; ".join(str(exc) for exc in refused), exit_code=max(exit_status(exc) for exc in refused))
