"""The database schema, as SQLAlchemy Core tables. Alembic migrations create it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from mediabeat.domain.scheduler import RunStatus, Trigger
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
    sa.CheckConstraint("role IN ('admin', 'member')", name="role"),
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
    sa.UniqueConstraint("org_id", "url"),
    sa.Index("ix_feeds_active_next_fetch_at", "active", "next_fetch_at"),
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
    # Run this task whenever that task's run succeeds (a chain), besides its own schedule.
    _fk("after_task_id", "scheduler_tasks.id", nullable=True, ondelete="SET NULL"),
    sa.Column("params", JSONType()),
    sa.Column("last_run_at", UTCDateTime()),
    sa.Column("last_status", CleanString(16)),
    sa.Column("next_run_at", UTCDateTime()),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
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
    # The tasks chained after a task: read at the end of each of its successful runs, and by
    # the foreign key's check when a task is deleted (migration 0008).
    sa.Index("ix_scheduler_tasks_after_task_id", "after_task_id"),
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
