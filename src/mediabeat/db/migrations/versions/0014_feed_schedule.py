"""Per-feed schedules: each feed's interval and its reason, a hash of its last body, dormancy.

- feeds.fetch_interval_s / interval_reason: the interval in effect after the last fetch, and why
  (publishing rate, overlap, the server's TTL or Cache-Control, Retry-After, backoff, dormant).
- feeds.body_hash: SHA-256 of the last body read, so an unchanged body is not parsed again and a
  changed body behind an unchanged ETag is still read.
- feeds.entries_per_week / last_new_entries: what the last parsed fetch showed.
- feeds.dormant_since: set when a failing feed turned dormant (polled every 30 days by default)
  instead of being disabled. Feeds that the old rule disabled for failing are made dormant here.
- hourly-rss-fetch wakes every minute (its seeded cron "0 * * * *" becomes "* * * * *"; a cron an
  operator changed is left alone): each feed is fetched at its own due time.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from mediabeat.db.tables import CleanString, CleanText, UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SEEDED_CRON = "0 * * * *"
EVERY_MINUTE = "* * * * *"
OLD_DISABLED = "disabled after %consecutive failures%"

tasks = sa.table(
    "scheduler_tasks",
    sa.column("name", sa.String),
    sa.column("cron", sa.String),
    sa.column("updated_at", UTCDateTime()),
)
feeds = sa.table(
    "feeds",
    sa.column("active", sa.Boolean),
    sa.column("disabled_reason", sa.Text),
    sa.column("dormant_since", UTCDateTime()),
    sa.column("next_fetch_at", UTCDateTime()),
    sa.column("interval_reason", sa.Text),
)


def upgrade() -> None:
    with op.batch_alter_table("feeds") as batch_op:
        batch_op.add_column(sa.Column("fetch_interval_s", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("interval_reason", CleanText(), nullable=True))
        batch_op.add_column(sa.Column("body_hash", CleanString(64), nullable=True))
        batch_op.add_column(sa.Column("entries_per_week", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_new_entries", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("dormant_since", UTCDateTime(), nullable=True))
    now = datetime.now(UTC)
    # A feed switched off for failing is not forgotten any more: it becomes dormant, due now.
    op.execute(
        feeds.update()
        .where(feeds.c.active.is_(False), feeds.c.disabled_reason.like(OLD_DISABLED))
        .values(
            active=True,
            disabled_reason=None,
            dormant_since=now,
            next_fetch_at=now,
            interval_reason="dormant: it had been disabled for failing",
        )
    )
    op.execute(
        tasks.update()
        .where(tasks.c.name == "hourly-rss-fetch", tasks.c.cron == SEEDED_CRON)
        .values(cron=EVERY_MINUTE, updated_at=now)
    )


def downgrade() -> None:
    op.execute(
        tasks.update()
        .where(tasks.c.name == "hourly-rss-fetch", tasks.c.cron == EVERY_MINUTE)
        .values(cron=SEEDED_CRON, updated_at=datetime.now(UTC))
    )
    with op.batch_alter_table("feeds") as batch_op:
        for name in (
            "dormant_since",
            "last_new_entries",
            "entries_per_week",
            "body_hash",
            "interval_reason",
            "fetch_interval_s",
        ):
            batch_op.drop_column(name)
