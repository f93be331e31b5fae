"""Feed priorities: a feed's crawl jobs carry its priority, and claims take the highest first.

`feeds.priority` and `media_crawl_jobs.priority` are 0 (the default) to 9. The queued-jobs
index becomes (priority DESC, run_after, id), the order claims read it in, so a claim stays
an index scan that stops after its batch however long the queue is.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEX = "ix_media_crawl_jobs_queued"
QUEUED = sa.text("status = 'queued'")


def upgrade() -> None:
    op.add_column("feeds", sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="0"))
    op.add_column("media_crawl_jobs", sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="0"))
    op.drop_index(INDEX, table_name="media_crawl_jobs", sqlite_where=QUEUED, postgresql_where=QUEUED)
    op.create_index(
        INDEX,
        "media_crawl_jobs",
        [sa.text("priority DESC"), "run_after", "id"],
        sqlite_where=QUEUED,
        postgresql_where=QUEUED,
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="media_crawl_jobs", sqlite_where=QUEUED, postgresql_where=QUEUED)
    op.create_index(INDEX, "media_crawl_jobs", ["run_after", "id"], sqlite_where=QUEUED, postgresql_where=QUEUED)
    with op.batch_alter_table("media_crawl_jobs") as batch_op:
        batch_op.drop_column("priority")
    with op.batch_alter_table("feeds") as batch_op:
        batch_op.drop_column("priority")
