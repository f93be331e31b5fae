"""The database schema, as SQLAlchemy Core tables. Alembic migrations create it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from mediabeat.domain.content import Role
from mediabeat.domain.scheduler import ChainKind, RunStatus, Trigger
from mediabeat.domain.text import clean_json, clean_text

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: timestamptz on PostgreSQL, naive UTC text on SQLite; always aware UTC in Python."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is UTC:
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class CleanString(TypeDecorator[str]):
    """A string column for text from outside: NULs dropped and lone surrogates replaced on the way in.

    Every bound value goes through it, in inserts, updates and comparisons (`col == x`,
    `col.icontains(x)`), so a hostile feed title or request field cannot fail a statement on
    PostgreSQL (text cannot hold U+0000) or on SQLite (its driver cannot encode a lone surrogate).
    """

    impl = sa.String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else clean_text(value)


class CleanText(CleanString):
    """CleanString without a length: TEXT."""

    impl = sa.Text
    cache_ok = True


class JSONType(TypeDecorator[Any]):
    """JSON (jsonb on PostgreSQL) whose strings, keys too, are cleaned as CleanString cleans them."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        return dialect.type_descriptor(postgresql.JSONB() if dialect.name == "postgresql" else sa.JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return clean_json(value)


def _id() -> sa.Column[Any]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def _created() -> sa.Column[Any]:
    return sa.Column("created_at", UTCDateTime(), nullable=False)


def _fk(name: str, target: str, *, nullable: bool = False, ondelete: str = "CASCADE") -> sa.Column[Any]:
    return sa.Column(
        name,
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey(target, ondelete=ondelete),
        nullable=nullable,
    )


organizations = sa.Table(
    "organizations",
    metadata,
    _id(),
    sa.Column("name", CleanString(200), nullable=False, unique=True),
    sa.Column("is_demo", sa.Boolean(), nullable=False, server_default=sa.false()),
    _created(),
)

users = sa.Table(
    "users",
    metadata,
    _id(),
    sa.Column("email", CleanString(320), nullable=False, unique=True),
    sa.Column("password_hash", CleanString(255), nullable=False),
    sa.Column("role", CleanString(16), nullable=False),
    _fk("org_id", "organizations.id", nullable=True, ondelete="SET NULL"),
    sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("last_login_at", UTCDateTime()),
    _created(),
    sa.CheckConstraint("role IN (" + ", ".join(f"'{r.value}'" for r in Role) + ")", name="role"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    _id(),
    _fk("user_id", "users.id"),
    sa.Column("name", CleanString(200), nullable=False),
    sa.Column("token_hash", CleanString(128), nullable=False, unique=True),
    sa.Column("prefix", CleanString(16), nullable=False),
    sa.Column("last_used_at", UTCDateTime()),
    sa.Column("revoked_at", UTCDateTime()),
    _created(),
)

user_sessions = sa.Table(
    "user_sessions",
    metadata,
    _id(),
    _fk("user_id", "users.id"),
    sa.Column("token_hash", CleanString(128), nullable=False, unique=True),
    sa.Column("csrf_token", CleanString(128), nullable=False),
    sa.Column("ip", CleanString(64)),
    sa.Column("user_agent", CleanString(400)),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("last_seen_at", UTCDateTime()),
    _created(),
)

login_failures = sa.Table(
    "login_failures",
    metadata,
    _id(),
    sa.Column("email", CleanString(320), nullable=False, index=True),
    sa.Column("ip", CleanString(64), nullable=False, index=True),
    _created(),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    _id(),
    _fk("actor_user_id", "users.id", nullable=True, ondelete="SET NULL"),
    sa.Column("actor", CleanString(320), nullable=False),
    sa.Column("action", CleanString(100), nullable=False),
    sa.Column("target_type", CleanString(50)),
    sa.Column("target_id", CleanString(200)),
    sa.Column("details", JSONType()),
    sa.Column("ip", CleanString(64)),
    _created(),
    sa.Index("ix_audit_events_created_at", "created_at"),
)

# The organisation each PostgreSQL member login role is scoped to: row-level security reads it
# through a SECURITY DEFINER function keyed on session_user (migration 0009; see db/rls.py).
# Unused on SQLite, which has no roles.
member_roles = sa.Table(
    "member_roles",
    metadata,
    sa.Column("role_name", CleanString(63), primary_key=True),
    _fk("org_id", "organizations.id"),
    _created(),
)

# A feed's priority, and its crawl jobs': higher is crawled sooner; 0 is the default.
MIN_PRIORITY, MAX_PRIORITY = 0, 9

feeds = sa.Table(
    "feeds",
    metadata,
    _id(),
    _fk("org_id", "organizations.id"),
    sa.Column("url", CleanString(2048), nullable=False),
    sa.Column("title", CleanString(500)),
    sa.Column("site_url", CleanString(2048)),
    sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("etag", CleanString(500)),
    sa.Column("last_modified", CleanString(100)),
    sa.Column("last_fetched_at", UTCDateTime()),
    sa.Column("last_status", CleanString(50)),
    sa.Column("last_error", CleanText()),
    sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_fetch_at", UTCDateTime()),
    sa.Column("disabled_reason", CleanText()),
    # MIN_PRIORITY to MAX_PRIORITY: the feed's crawl jobs are claimed highest priority first.
    sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="0"),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # The per-feed schedule (migration 0014): the interval in effect and why, the last body's SHA-256,
    # what the last parsed fetch showed, and since when a failing feed is dormant.
    sa.Column("fetch_interval_s", sa.Integer()),
    sa.Column("interval_reason", CleanText()),
    sa.Column("body_hash", CleanString(64)),
    sa.Column("entries_per_week", sa.Integer()),
    sa.Column("last_new_entries", sa.Integer()),
    sa.Column("dormant_since", UTCDateTime()),
    # Entries listed at the last parsed fetch: the window rule's window (migration 0030).
    sa.Column("window_entries", sa.Integer()),
    sa.UniqueConstraint("org_id", "url"),
    sa.Index("ix_feeds_active_next_fetch_at", "active", "next_fetch_at"),
    # The pages of due feeds, read by keyset on (next_fetch_at, id) (migration 0023).
    sa.Index("ix_feeds_due", "next_fetch_at", "id", sqlite_where=sa.text("active"), postgresql_where=sa.text("active")),
)

articles = sa.Table(
    "articles",
    metadata,
    _id(),
    _fk("org_id", "organizations.id"),
    _fk("feed_id", "feeds.id", nullable=True, ondelete="SET NULL"),
    sa.Column("url", CleanString(2048), nullable=False),
    sa.Column("canonical_url", CleanString(2048)),
    sa.Column("url_hash", CleanString(64), nullable=False),
    sa.Column("title", CleanText()),
    sa.Column("author", CleanText()),
    sa.Column("published_at", UTCDateTime()),
    sa.Column("summary", CleanText()),
    sa.Column("text", CleanText()),
    sa.Column("language", CleanString(16)),
    sa.Column("fetched_at", UTCDateTime(), nullable=False),
    _created(),
    sa.UniqueConstraint("org_id", "url_hash"),
    sa.Index("ix_articles_org_id_fetched_at", "org_id", "fetched_at"),
)

JOB_STATUSES = ("queued", "running", "succeeded", "failed")

media_crawl_jobs = sa.Table(
    "media_crawl_jobs",
    metadata,
    _id(),
    _fk("org_id", "organizations.id"),
    _fk("feed_id", "feeds.id", nullable=True, ondelete="SET NULL"),
    sa.Column("url", CleanString(2048), nullable=False),
    sa.Column("url_hash", CleanString(64), nullable=False),
    sa.Column("status", CleanString(16), nullable=False, server_default="queued"),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="5"),
    sa.Column("run_after", UTCDateTime(), nullable=False),
    sa.Column("locked_by", CleanString(200)),
    sa.Column("locked_until", UTCDateTime()),
    sa.Column("last_error", CleanText()),
    _fk("article_id", "articles.id", nullable=True, ondelete="SET NULL"),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="0"),
    # The date the feed entry gave: the article's date when its page names none (migration 0010).
    sa.Column("feed_published_at", UTCDateTime()),
    sa.UniqueConstraint("org_id", "url_hash"),
    sa.CheckConstraint(f"status IN {JOB_STATUSES!r}", name="status"),
    # The lease reaper looks only at running rows.
    sa.Index(
        "ix_media_crawl_jobs_running",
        "locked_until",
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    ),
    sa.Index("ix_media_crawl_jobs_created_at", "created_at"),
    sa.Index("ix_media_crawl_jobs_status", "status"),
)

# Claims scan only the queued rows, in claim order: highest priority first, then due order.
sa.Index(
    "ix_media_crawl_jobs_queued",
    media_crawl_jobs.c.priority.desc(),
    media_crawl_jobs.c.run_after,
    media_crawl_jobs.c.id,
    sqlite_where=sa.text("status = 'queued'"),
    postgresql_where=sa.text("status = 'queued'"),
)

scheduler_tasks = sa.Table(
    "scheduler_tasks",
    metadata,
    _id(),
    sa.Column("name", CleanString(100), nullable=False, unique=True),
    sa.Column("description", CleanText(), nullable=False, server_default=""),
    sa.Column("handler", CleanString(100), nullable=False),
    sa.Column("cron", CleanString(200), nullable=False),
    sa.Column("timezone", CleanString(64), nullable=False, server_default="UTC"),
    sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("misfire_policy", CleanString(16), nullable=False, server_default="run_once"),
    sa.Column("overlap_policy", CleanString(16), nullable=False, server_default="forbid"),
    sa.Column("timeout_s", sa.Integer(), nullable=False, server_default="3600"),
    sa.Column("params", JSONType()),
    sa.Column("last_run_at", UTCDateTime()),
    sa.Column("last_status", CleanString(16)),
    sa.Column("next_run_at", UTCDateTime()),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # Retries of a failed or timed-out run (migration 0016), and the retry waiting to start.
    sa.Column("max_retries", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("retry_backoff_s", sa.Integer(), nullable=False, server_default="60"),
    sa.Column("retry_backoff_max_s", sa.Integer(), nullable=False, server_default="3600"),
    sa.Column("retry_at", UTCDateTime()),
    sa.Column("retry_run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
    sa.Column("retry_attempt", sa.Integer(), nullable=False, server_default="0"),
    # Migration 0021: higher priority starts first when more runs are due than a node may start;
    # keep_empty_runs keeps the rows of scheduled runs that found nothing to do (else only counted);
    # last_scheduled_for is the latest occurrence the schedule claimed (never claimed again).
    sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("keep_empty_runs", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("last_scheduled_for", UTCDateTime()),
    sa.Column("last_empty_run_at", UTCDateTime()),
    sa.CheckConstraint("misfire_policy IN ('run_once', 'skip', 'catch_up')", name="misfire"),
    sa.CheckConstraint("overlap_policy IN ('forbid', 'allow')", name="overlap"),
    sa.CheckConstraint("timeout_s > 0", name="timeout"),
    # The loop asks "which enabled task is due first?" on every wake-up: only enabled rows matter.
    sa.Index(
        "ix_scheduler_tasks_due",
        "next_run_at",
        sqlite_where=sa.text("enabled = 1"),
        postgresql_where=sa.text("enabled"),
    ),
)

# Chains (migration 0019): `downstream` runs after `upstream` succeeds (kind success) or fails, its
# retries used up (kind failure). A task with several success upstreams runs once all of them have
# succeeded in the same cycle: `cycle` is the downstream's cycle (scheduler_task_joins) in which the
# upstream last succeeded; `last_run_id` is the upstream run that last counted (a failure edge fires
# once per failed run: a compare-and-set on it).
CHAIN_KINDS = tuple(kind.value for kind in ChainKind)
scheduler_task_edges = sa.Table(
    "scheduler_task_edges",
    metadata,
    sa.Column(
        "downstream_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("scheduler_tasks.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "upstream_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("scheduler_tasks.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("kind", CleanString(16), nullable=False),
    sa.Column("cycle", sa.BigInteger()),
    sa.Column("last_run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
    sa.CheckConstraint(f"kind IN {CHAIN_KINDS!r}", name="kind"),
    # The tasks chained after a task: read at the end of each of its runs, and by the
    # foreign key's check when a task is deleted.
    sa.Index("ix_scheduler_task_edges_upstream_id", "upstream_id"),
)

# A fan-in's cycle counter, one row per task with success upstreams: the task is started by the one
# UPDATE that moves `cycle` on while every success edge carries the current value (exactly once,
# whichever node sees the last upstream succeed).
scheduler_task_joins = sa.Table(
    "scheduler_task_joins",
    metadata,
    sa.Column(
        "task_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("scheduler_tasks.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("cycle", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("fired_at", UTCDateTime()),
)

# The CHECK constraints' lists (migration 0001 spells them out the same, in this order).
RUN_STATUSES = tuple(status.value for status in RunStatus)
RUN_TRIGGERS = tuple(trigger.value for trigger in Trigger)

scheduler_task_runs = sa.Table(
    "scheduler_task_runs",
    metadata,
    _id(),
    _fk("task_id", "scheduler_tasks.id"),
    sa.Column("trigger", CleanString(16), nullable=False),
    sa.Column("scheduled_for", UTCDateTime(), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("duration_ms", sa.Integer()),
    sa.Column("status", CleanString(16), nullable=False),
    sa.Column("error", CleanText()),
    sa.Column("traceback", CleanText()),
    sa.Column("result", JSONType()),
    sa.Column("missed", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("node_id", CleanString(200)),
    sa.Column("heartbeat_at", UTCDateTime()),
    sa.Column("triggered_by", CleanString(320)),
    # An operator asked to cancel the run (migration 0016); the node executing it notices at its next beat.
    sa.Column("cancel_requested_at", UTCDateTime()),
    sa.Column("cancelled_by", CleanString(320)),
    sa.Column("retry_of", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
    # What the handler and the crawler logged during the run, bounded (MEDIABEAT_RUN_LOG_MAX_CHARS).
    sa.Column("log", CleanText()),
    sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"),
    sa.CheckConstraint(f"status IN {RUN_STATUSES!r}", name="status"),
    sa.CheckConstraint(f"trigger IN {RUN_TRIGGERS!r}", name="trigger"),
    # Exactly once per scheduled occurrence: the node whose INSERT wins runs it.
    sa.Index(
        "uq_scheduler_task_runs_occurrence",
        "task_id",
        "scheduled_for",
        unique=True,
        sqlite_where=sa.text("\"trigger\" = 'schedule'"),
        postgresql_where=sa.text("\"trigger\" = 'schedule'"),
    ),
    sa.Index("ix_scheduler_task_runs_started_at", "started_at"),
    sa.Index("ix_scheduler_task_runs_status", "status"),
    sa.Index("ix_scheduler_task_runs_task_id_started_at", "task_id", "started_at"),
    sa.Index(
        "ix_scheduler_task_runs_running",
        "task_id",
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    ),
)

# How many runs each task has in each status, kept by triggers on scheduler_task_runs (migration 0004),
# so the statistics read a few rows instead of counting the whole run history.
scheduler_run_counts = sa.Table(
    "scheduler_run_counts",
    metadata,
    sa.Column(
        "task_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("scheduler_tasks.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("status", CleanString(16), primary_key=True),
    sa.Column("runs", sa.BigInteger(), nullable=False),
)

# On PostgreSQL the triggers append to this table instead of updating the counts in place, and the
# maintenance leader folds it into scheduler_run_counts (migration 0006); no foreign key, so the
# deltas of a task's last deleted runs may outlive it until the next fold.
scheduler_run_count_deltas = sa.Table(
    "scheduler_run_count_deltas",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("status", CleanString(16), nullable=False),
    sa.Column("runs", sa.BigInteger(), nullable=False),
)

# Scheduled runs that found nothing to do and were not kept as rows, counted per task and hour (0021).
scheduler_empty_runs = sa.Table(
    "scheduler_empty_runs",
    metadata,
    sa.Column(
        "task_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("scheduler_tasks.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("hour", UTCDateTime(), primary_key=True),
    sa.Column("runs", sa.BigInteger(), nullable=False),
    sa.Index("ix_scheduler_empty_runs_hour", "hour"),
)

scheduler_nodes = sa.Table(
    "scheduler_nodes",
    metadata,
    sa.Column("id", CleanString(200), primary_key=True),
    sa.Column("host", CleanString(255), nullable=False),
    sa.Column("pid", sa.Integer(), nullable=False),
    sa.Column("version", CleanString(50), nullable=False),
    sa.Column("role", CleanString(16), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
    sa.Column("stopped_at", UTCDateTime()),
)

# Singleton duties (the reaper, retention) are held by one node at a time through a lease row.
scheduler_leases = sa.Table(
    "scheduler_leases",
    metadata,
    sa.Column("name", CleanString(100), primary_key=True),
    sa.Column("holder", CleanString(200), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
)

# The full-text indexes, which no Table here can declare: SQLite's FTS5 tables over articles
# (migration 0011's, and 0031's over the newest ids with the table holding its lowest id; each with
# the shadow tables FTS5 keeps; FTS5's list of the newest articles' words and the word lists counted
# from it, migrations 0033 and 0035) and PostgreSQL's generated tsvector column with its GIN indexes
# (the bands' indexes of migration 0036 are named by their lowest id: SEARCH_BAND_INDEX_PREFIX).
# db/stores/search.py queries them by name; the schema comparison leaves them out.
SEARCH_INDEX_OBJECTS = frozenset(
    {
        *(
            f"{fts5}{shadow}"
            for fts5 in ("articles_search", "articles_search_recent")
            for shadow in ("", "_config", "_data", "_docsize", "_idx")
        ),
        "articles_search_recent_floor",
        "articles_search_bands",
        "articles_search_recent_vocab",
        "search_weightless_words",
        "search_common_words",
        "search_vector",
        "ix_articles_search_vector",
        "ix_articles_search_recent",
    }
)
SEARCH_BAND_INDEX_PREFIX = "ix_articles_search_band_"


def is_search_index_object(name: str | None) -> bool:
    """Whether the schema comparison leaves this object out (see SEARCH_INDEX_OBJECTS)."""
    return name is not None and (name in SEARCH_INDEX_OBJECTS or name.startswith(SEARCH_BAND_INDEX_PREFIX))


# Monitors (migration 0012): saved queries matched against each article as it is stored.
# The webhook secret is kept as given (HMAC signing needs it); the Atom feed's URL secret only
# as a SHA-256 hash, like API tokens. `version` goes up on every change, so each worker
# process sees that its compiled copy of the org's monitors is stale.
monitors = sa.Table(
    "monitors",
    metadata,
    _id(),
    _fk("org_id", "organizations.id"),
    sa.Column("name", CleanString(200), nullable=False),
    sa.Column("query", CleanText(), nullable=False),
    sa.Column("webhook_url", CleanString(2048)),
    sa.Column("webhook_secret", CleanString(128)),
    sa.Column("email", CleanString(320)),
    sa.Column("digest", CleanString(16), nullable=False, server_default="none"),
    sa.Column("cooldown_s", sa.Integer(), nullable=False, server_default="300"),
    sa.Column("spike_alerts", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("feed_token_hash", CleanString(128), nullable=False, unique=True),
    sa.Column("start_after_article_id", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("created_by", CleanString(320), nullable=False),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("last_delivered_at", UTCDateTime()),
    sa.Column("last_spike_at", UTCDateTime()),
    sa.UniqueConstraint("org_id", "name"),
    sa.CheckConstraint("digest IN ('none', 'hourly', 'daily')", name="digest"),
)

monitor_matches = sa.Table(
    "monitor_matches",
    metadata,
    _id(),
    _fk("monitor_id", "monitors.id"),
    _fk("org_id", "organizations.id"),
    _fk("article_id", "articles.id"),
    sa.Column("matched_at", UTCDateTime(), nullable=False),
    sa.Column("delivered_at", UTCDateTime()),
    sa.UniqueConstraint("monitor_id", "article_id"),
    sa.Index("ix_monitor_matches_monitor_id_matched_at", "monitor_id", "matched_at"),
    sa.Index(
        "ix_monitor_matches_undelivered",
        "monitor_id",
        sqlite_where=sa.text("delivered_at IS NULL"),
        postgresql_where=sa.text("delivered_at IS NULL"),
    ),
)

monitor_deliveries = sa.Table(
    "monitor_deliveries",
    metadata,
    _id(),
    _fk("monitor_id", "monitors.id"),
    _fk("org_id", "organizations.id"),
    sa.Column("channel", CleanString(16), nullable=False),
    sa.Column("kind", CleanString(16), nullable=False),
    sa.Column("status", CleanString(16), nullable=False),
    sa.Column("payload", JSONType(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime()),
    sa.Column("last_error", CleanText()),
    _created(),
    sa.Column("sent_at", UTCDateTime()),
    sa.Index("ix_monitor_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    sa.Index("ix_monitor_deliveries_monitor_id_id", "monitor_id", "id"),
)

# Matching's watermark per organisation: every article with an id at or below last_article_id
# has been matched. Articles above it that a batch already matched are in monitor_scanned, so
# a catch-up matches only what a failed hook or a dead process left.
monitor_cursors = sa.Table(
    "monitor_cursors",
    metadata,
    sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("last_article_id", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
)

monitor_scanned = sa.Table(
    "monitor_scanned",
    metadata,
    sa.Column(
        "article_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("articles.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    _fk("org_id", "organizations.id"),
    sa.Index("ix_monitor_scanned_org_id_article_id", "org_id", "article_id"),
)

# Story clusters: near-duplicate articles of one organisation (migration 0013, mediabeat.stories).
story_clusters = sa.Table(
    "story_clusters",
    metadata,
    _id(),
    _fk("org_id", "organizations.id"),
    _created(),
)

# One row per clustered article: its cluster and its MinHash signature (NUM_PERM uint32 values).
article_clusters = sa.Table(
    "article_clusters",
    metadata,
    sa.Column(
        "article_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("articles.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    _fk("org_id", "organizations.id"),
    _fk("cluster_id", "story_clusters.id"),
    sa.Column("signature", sa.LargeBinary(), nullable=False),
    sa.Column("clustered_at", UTCDateTime(), nullable=False),
    sa.Index("ix_article_clusters_org_id_cluster_id", "org_id", "cluster_id"),
    sa.Index("ix_article_clusters_cluster_id", "cluster_id"),
)

# The LSH index: an article's band hashes (the band's number is hashed in, so a hash names its band);
# candidates are the articles sharing any band_hash, one indexed lookup for a whole batch.
article_bands = sa.Table(
    "article_bands",
    metadata,
    sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("band_no", sa.SmallInteger(), nullable=False),
    sa.Column("band_hash", sa.BigInteger(), nullable=False),
    sa.Column(
        "article_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("article_clusters.article_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.PrimaryKeyConstraint("article_id", "band_no"),
    sa.Index("ix_article_bands_org_id_band_hash", "org_id", "band_hash"),
)

# Articles stored and not yet placed in a story cluster (migration 0029): written with the article,
# deleted when it is placed. The crawl's hooks place their own; the sweep places what a dead process left.
story_pending = sa.Table(
    "story_pending",
    metadata,
    sa.Column(
        "article_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("articles.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    _fk("org_id", "organizations.id"),
    sa.Column("stored_at", UTCDateTime(), nullable=False),
    sa.Index("ix_story_pending_org_id_article_id", "org_id", "article_id"),
)

# WebSub: one subscription per feed to the hub it advertises (migration 0015). `secret` is the
# hub.secret shared with the hub: HMAC needs it in clear, so it is read only by the push check and
# the subscribe request, never logged or shown, and not granted to member roles. The callback URL
# carries `callback_token`, a random name for the subscription: not a credential (the hub and every
# proxy on the way see it), only unguessable, so nobody can deny or unsubscribe ours by counting ids.
WEBSUB_STATES = ("pending", "verified", "denied", "expired", "unsubscribed")
websub_subscriptions = sa.Table(
    "websub_subscriptions",
    metadata,
    _id(),
    _fk("org_id", "organizations.id"),
    _fk("feed_id", "feeds.id"),
    sa.Column("hub", CleanString(2048), nullable=False),
    sa.Column("topic", CleanString(2048), nullable=False),
    sa.Column("callback_token", CleanString(64), nullable=False),
    sa.Column("secret", CleanString(200), nullable=False),
    sa.Column("state", CleanString(16), nullable=False, server_default="pending"),
    sa.Column("lease_seconds", sa.Integer()),
    sa.Column("lease_expires_at", UTCDateTime()),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime()),
    sa.Column("last_error", CleanText()),
    sa.Column("last_push_at", UTCDateTime()),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("feed_id"),
    sa.UniqueConstraint("callback_token"),
    sa.CheckConstraint(f"state IN {WEBSUB_STATES!r}", name="state"),
    sa.Index("ix_websub_subscriptions_next_attempt_at", "next_attempt_at"),
)

# Subscriptions being ended (migration 0028): the feed was deleted or disabled, its organisation
# removed, or its hub changed. No foreign keys: the feed and its organisation may be gone, and
# websub-renew still has to ask the hub to stop (hub.mode=unsubscribe) and answer its verification.
WEBSUB_UNSUBSCRIBE_STATES = ("pending", "confirmed", "given_up")
websub_unsubscriptions = sa.Table(
    "websub_unsubscriptions",
    metadata,
    _id(),
    sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("feed_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("hub", CleanString(2048), nullable=False),
    sa.Column("topic", CleanString(2048), nullable=False),
    sa.Column("callback_token", CleanString(64), nullable=False),
    sa.Column("reason", CleanString(200), nullable=False),
    sa.Column("state", CleanString(16), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime()),
    sa.Column("last_error", CleanText()),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("callback_token"),
    sa.CheckConstraint(f"state IN {WEBSUB_UNSUBSCRIBE_STATES!r}", name="state"),
    sa.Index("ix_websub_unsubscriptions_next_attempt_at", "next_attempt_at"),
)

# The cluster-wide pause switch (migration 0016): one row, read by every node's loop before it
# claims due runs and inside the claim itself, so a pause holds on every node at once.
scheduler_pause = sa.Table(
    "scheduler_pause",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("reason", CleanString(500)),
    sa.Column("changed_by", CleanString(320)),
    sa.Column("changed_at", UTCDateTime()),
    sa.CheckConstraint("id = 1", name="single_row"),
)

# Per-host politeness shared by every crawling process on this database (db/stores/politeness.py).
# Times are seconds since the epoch by the database's clock on PostgreSQL and by the machine's on
# SQLite (one machine), as doubles: the store does its arithmetic on them in SQL.
host_politeness = sa.Table(
    "host_politeness",
    metadata,
    sa.Column("host", CleanString(300), primary_key=True),  # host:port, as the crawler's limiter keys it
    sa.Column("next_start_at", sa.Double(), nullable=False),  # the earliest start of the next request
    sa.Column("cooldown_until", sa.Double(), nullable=False),  # after a 429/503: no start before this
    sa.Column("crawl_delay_s", sa.Double(), nullable=False),  # its robots.txt Crawl-delay, as last read
    sa.Column("crawl_delay_until", sa.Double(), nullable=False),  # that Crawl-delay applies until then
    sa.Column("updated_at", sa.Double(), nullable=False),
)

# One row per request in flight (or about to start) to a host, across the cluster: a lease that
# runs out by itself, so a process that dies holding slots never blocks the host for long.
host_slots = sa.Table(
    "host_slots",
    metadata,
    sa.Column("host", CleanString(300), primary_key=True),
    sa.Column("holder", CleanString(200), primary_key=True),
    sa.Column("expires_at", sa.Double(), nullable=False),
)

# The HTML of a crawled page, kept (MEDIABEAT_CRAWLER_KEEP_RAW_HTML) so its article can be extracted
# again after the extraction changes (`mediabeat articles reextract`). A table of its own, not a
# column of articles: the bytes are read only by a re-extraction, and on SQLite a new column of
# articles could only be added by rebuilding it, which drops the search triggers.
article_raw_pages = sa.Table(
    "article_raw_pages",
    metadata,
    sa.Column("article_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("fetched_at", UTCDateTime(), nullable=False),
    sa.Column("url", CleanString(2048), nullable=False),  # where the body came from, after redirects
    sa.Column("content_type", CleanString(200)),  # as the server sent it, charset included
    sa.Column("feed_published_at", UTCDateTime()),  # the feed entry's date: the extraction's fallback date
    sa.Column("compression", CleanString(16), nullable=False),  # "zlib"
    sa.Column("size", sa.Integer(), nullable=False),  # bytes before compression
    sa.Column("body", sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(["article_id"], ["articles.id"], ondelete="CASCADE"),
    sa.Index("ix_article_raw_pages_fetched_at", "fetched_at"),
)

# Alert rules per task (migration 0020): one optional row per task; without one a task alerts as
# before (one failure and one recovery alert, to the global channels). A table of its own, not
# columns on scheduler_tasks: the claim and listing queries over tasks stay as they were.
task_alert_rules = sa.Table(
    "task_alert_rules",
    metadata,
    sa.Column(
        "task_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("scheduler_tasks.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("after_failures", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("late_after_s", sa.Integer()),
    sa.Column("missing", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("slower_than_s", sa.Integer()),
    sa.Column("slower_than_p95", sa.Double()),
    sa.Column("mute_until", UTCDateTime()),
    sa.Column("webhook_url", CleanText()),
    sa.Column("email", CleanString(254)),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("after_failures >= 1", name="after_failures"),
)

# Every alert a task's rules raised. The unique (task_id, kind, key) is the exactly-once claim:
# a node sends an alert only after its INSERT wins, so two nodes checking at once send it once.
task_alerts = sa.Table(
    "task_alerts",
    metadata,
    _id(),
    _fk("task_id", "scheduler_tasks.id"),
    sa.Column("kind", CleanString(16), nullable=False),
    sa.Column("key", CleanString(64), nullable=False),
    sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
    sa.Column("occurrence", UTCDateTime()),
    sa.Column("message", CleanText(), nullable=False),
    sa.Column("destination", CleanText(), nullable=False),
    sa.Column("muted", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("node_id", CleanString(200)),
    _created(),
    sa.UniqueConstraint("task_id", "kind", "key", name="uq_task_alerts_key"),
    sa.Index("ix_task_alerts_task_id_id", "task_id", "id"),
)
