"""The content side's vocabulary: organisations, feeds, articles, crawl jobs, users, tokens and the audit record.

Plain records and filters, the states as enums, and the exceptions a content service raises. No I/O: the
stores build these records, the services apply the rules, and the adapters render them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Feed URLs longer than this are refused everywhere (the API field, the CLI, OPML import): no real feed
# needs more, and the column is indexed.
MAX_URL_LENGTH = 2048
MAX_ORG_NAME = 200
MAX_TITLE = 500


class JobStatus(enum.StrEnum):
    """Where a crawl job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Role(enum.StrEnum):
    """What a user may do: an admin everything; an operator run the scheduler and the crawl queue, but change
    no definitions, accounts or content; a member their own organisation's content (domain/access.py)."""

    ADMIN = "admin"
    OPERATOR = "operator"
    MEMBER = "member"


ROLE_NAMES = ", ".join(r.value for r in Role)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change, as the audit record names them: a signed-in user's email, or `cli:<os user>`."""

    name: str
    user_id: int | None = None
    via: str | None = None  # "session" or "token" for the API; None for the CLI
    ip: str | None = None

    @classmethod
    def cli(cls, os_user: str) -> Actor:
        return cls(name=f"cli:{os_user}")


SYSTEM = Actor(name="system")


# -- records ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrgRecord:
    id: int
    name: str
    is_demo: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrgSummary:
    """An organisation with how many feeds it has."""

    org: OrgRecord
    feeds: int


@dataclass(frozen=True, slots=True)
class FeedRecord:
    id: int
    org_id: int
    url: str
    title: str | None
    site_url: str | None
    active: bool
    etag: str | None
    last_modified: str | None
    last_fetched_at: datetime | None
    last_status: str | None
    last_error: str | None
    consecutive_failures: int
    next_fetch_at: datetime | None
    disabled_reason: str | None
    priority: int
    created_at: datetime
    updated_at: datetime
    fetch_interval_s: int | None = None
    interval_reason: str | None = None
    body_hash: str | None = None
    entries_per_week: int | None = None
    last_new_entries: int | None = None
    dormant_since: datetime | None = None
    window_entries: int | None = None  # entries listed at the last parsed fetch


@dataclass(frozen=True, slots=True)
class FeedShard:
    """One of `count` disjoint parts of the feeds (id modulo count equals index): one hourly-rss-fetch task each.

    Several tasks with `{"shard": "0/4"}` .. `{"shard": "3/4"}` split a feed pass over the nodes that run them.
    """

    index: int
    count: int

    @classmethod
    def parse(cls, value: object) -> FeedShard | None:
        """The shard a task's `shard` parameter names ("I/N", 0 <= I < N); None when absent; ValueError if invalid."""
        if value is None:
            return None
        parts = value.split("/") if isinstance(value, str) else []
        if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
            index, count = int(parts[0]), int(parts[1])
            if 0 <= index < count:
                return cls(index, count)
        raise ValueError(f'the "shard" parameter must be "I/N" with 0 <= I < N, such as "0/4", not {value!r}')


@dataclass(frozen=True, slots=True)
class ArticleRecord:
    id: int
    org_id: int
    feed_id: int | None
    url: str
    canonical_url: str | None
    url_hash: str
    title: str | None
    author: str | None
    published_at: datetime | None
    summary: str | None
    text: str | None
    language: str | None
    fetched_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    org_id: int
    feed_id: int | None
    url: str
    url_hash: str
    status: JobStatus
    attempts: int
    max_attempts: int
    run_after: datetime
    locked_by: str | None
    locked_until: datetime | None
    last_error: str | None
    article_id: int | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    priority: int
    feed_published_at: datetime | None  # the date its feed entry gave, the article's fallback


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    email: str
    role: str
    org_id: int | None
    org_name: str | None
    is_active: bool
    must_change_password: bool
    last_login_at: datetime | None
    created_at: datetime
    password_hash: str

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    user_id: int
    email: str
    name: str
    prefix: str
    last_used_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    actor_user_id: int | None
    actor: str
    action: str
    target_type: str | None
    target_id: str | None
    details: dict[str, Any] | None
    ip: str | None
    created_at: datetime


# -- filters ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArticleFilter:
    """Which articles to list, newest first; `before_id` pages on, `title` matches any case."""

    org_id: int | None = None
    feed_id: int | None = None
    title: str | None = None
    before_id: int | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class ReextractFilter:
    """Which articles to extract again from kept HTML: fetched since `since`, of an org or feed, `limit` at most."""

    since: datetime | None = None
    org_id: int | None = None
    feed_id: int | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class ReextractCounts:
    """What a re-extraction did: articles changed, unchanged, that failed to extract, and those with no kept HTML."""

    reextracted: int = 0
    unchanged: int = 0
    failed: int = 0
    no_raw_html: int = 0


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which crawl jobs to list, newest first."""

    status: JobStatus | None = None
    org_id: int | None = None
    before_id: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    """What queueing named failed jobs again did: how many were queued, and why the others were not."""

    requeued: int
    not_found: tuple[int, ...] = ()
    not_failed: tuple[tuple[int, JobStatus], ...] = ()  # (id, its status)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit events to list, newest first."""

    action: str | None = None
    actor: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    before_id: int | None = None
    limit: int = 50


# -- outcomes --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpmlPlan:
    """What an OPML import will do: the canonical (url, title) pairs to add, and the entries it skips."""

    listed: int
    usable: list[tuple[str, str | None]]
    skipped: list[str]


@dataclass(frozen=True, slots=True)
class OpmlImport:
    """What an OPML import did."""

    org_id: int
    listed: int
    feeds: list[tuple[FeedRecord, bool]]  # each with whether it was new
    skipped: list[str]

    @property
    def added(self) -> int:
        return sum(1 for _, new in self.feeds if new)

    @property
    def existing(self) -> int:
        return len(self.feeds) - self.added


# -- exceptions ------------------------------------------------------------------------------------


class ContentError(Exception):
    """A content rule refused the request; the message says what to do."""


class NotFound(ContentError):
    """The thing named does not exist (or, for a member, belongs to another organisation)."""

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"no {kind} with id {key}" if isinstance(key, int) else f"no {kind} {key}")
        self.kind = kind
        self.key = key


class OrgNotFound(NotFound):
    def __init__(self, key: object) -> None:
        super().__init__("organisation", key)


class FeedNotFound(NotFound):
    def __init__(self, key: object) -> None:
        super().__init__("feed", key)


class ArticleNotFound(NotFound):
    def __init__(self, key: object) -> None:
        super().__init__("article", key)


class JobNotFound(NotFound):
    def __init__(self, key: object) -> None:
        super().__init__("crawl job", key)


class UserNotFound(NotFound):
    def __init__(self, key: object) -> None:
        super().__init__("user", key)


class TokenNotFound(NotFound):
    def __init__(self, key: object) -> None:
        super().__init__("token", key)


class Conflict(ContentError):
    """The request is well formed, but the current state refuses it: a name already taken, a job not failed.

    Not bad input (the same command may succeed once the state changes): the CLI exits 1 for it, not 2.
    """


class OrgExists(Conflict):
    """An organisation with this name already exists."""


class InvalidInput(ContentError):
    """A value breaks a rule; `field` names the input."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class EmailTaken(InvalidInput, Conflict):
    """A user with this email exists already: a conflict, told under the `email` field (the API's 422)."""

    def __init__(self, email: str) -> None:
        super().__init__("email", f"a user with email {email} exists already")


class BadFeedUrl(InvalidInput):
    def __init__(self, message: str = "a feed URL starts with http:// or https:// and names a host") -> None:
        super().__init__("url", message)


class FeedCheckFailed(InvalidInput):
    """The address was fetched but gave no usable feed; the message says why (not a feed, HTTP 404, ...)."""

    def __init__(self, message: str) -> None:
        super().__init__("url", message)


class BadOpml(InvalidInput):
    def __init__(self, message: str) -> None:
        super().__init__("body", message)


class OpmlTooLarge(ContentError):
    """The OPML file is too big, or lists more feeds than one import may add."""


class JobNotFailed(Conflict):
    def __init__(self, job_id: int, status: JobStatus) -> None:
        super().__init__(f"crawl job {job_id} is {status}, not failed")
        self.status = status


class NotDemoOrg(Conflict):
    """An organisation has the demo's name but was not made by `serve --demo`: it is never changed as the demo."""

    def __init__(self, name: str, doing: str) -> None:
        super().__init__(f"the organisation {name!r} was not created by `serve --demo`; {doing}")


@dataclass(frozen=True, slots=True)
class CheckedFeed:
    """A feed found and parsed when it was added: its URL, title and how many entries it had."""

    url: str
    title: str | None
    entries: int


@dataclass(frozen=True, slots=True)
class SitemapFinding:
    """One `Sitemap:` line of a site's robots.txt: its news entries now, or why it is no news sitemap."""

    url: str
    news_entries: int
    reason: str | None  # None: a news sitemap


@dataclass(frozen=True, slots=True)
class FeedAddition:
    """What adding an address did: the feeds added (each with whether it was new), what the check found."""

    address: str
    checked: bool
    feeds: list[tuple[FeedRecord, bool]]
    found: list[CheckedFeed]
    also_found: list[str]  # further feeds the page names, not added (add them with --all / all_feeds)
    refused: list[tuple[str, str]]  # (url, why) of candidates that could not be used
    # A site's address: the sitemaps its robots.txt lists (news ones are offered, or added with --all),
    # and why robots.txt gave none when it could not be read.
    sitemaps: list[SitemapFinding] = field(default_factory=list)
    robots_note: str | None = None


@dataclass(frozen=True, slots=True)
class FeedFetchReport:
    """What fetching one feed now did (`mediabeat feeds fetch ID`)."""

    feed: FeedRecord
    outcome: str  # fetched | not_modified | unchanged | failed | dormant | disabled
    status: str | None
    error: str | None
    entries: int
    new_jobs: int
