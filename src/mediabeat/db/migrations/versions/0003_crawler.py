"""Seed the crawler tasks: hourly-rss-fetch (every hour) and crawl-queue (every ten minutes).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from mediabeat.db.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

tasks = sa.table(
    "scheduler_tasks",
    sa.column("name", sa.String),
    sa.column("description", sa.Text),
    sa.column("handler", sa.String),
    sa.column("cron", sa.String),
    sa.column("timezone", sa.String),
    sa.column("timeout_s", sa.Integer),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)

NAMES = ("hourly-rss-fetch", "crawl-queue")


def upgrade() -> None:
    now = datetime.now(UTC)
    op.bulk_insert(
        tasks,
        [
            {
                "name": "hourly-rss-fetch",
                "description": "Fetch every active feed of every organisation and queue a crawl job per new article",
                "handler": "hourly_rss_fetch",
                "cron": "0 * * * *",
                "timezone": "UTC",
                "timeout_s": 1800,
                "created_at": now,
                "updated_at": now,
            },
            {
                "name": "crawl-queue",
                "description": "Claim queued crawl jobs, fetch and extract each article, store it",
                "handler": "crawl_queue",
                "cron": "*/10 * * * *",
                "timezone": "UTC",
                "timeout_s": 900,
                "created_at": now,
                "updated_at": now,
            },
        ],
    )


def downgrade() -> None:
    op.execute(tasks.delete().where(tasks.c.name.in_(NAMES)))
