"""Seed the nightly-cleanup task (midnight UTC, as in the product note).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from mediabeat.db.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
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


def upgrade() -> None:
    now = datetime.now(UTC)
    op.bulk_insert(
        tasks,
        [
            {
                "name": "nightly-cleanup",
                "description": "Delete crawl jobs older than 30 days and task runs older than 60 days",
                "handler": "nightly_cleanup",
                "cron": "0 0 * * *",
                "timezone": "UTC",
                "timeout_s": 1800,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )


def downgrade() -> None:
    op.execute(tasks.delete().where(tasks.c.name == "nightly-cleanup"))
