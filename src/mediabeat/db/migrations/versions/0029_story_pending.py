"""Story clusters: a durable "not yet clustered" marker per stored article (`story_pending`).

An article is marked in the transaction that stores it (and again when it is stored afresh),
and the marker is deleted in the transaction that places it in a cluster, under the
organisation's clustering lock. So an article is clustered exactly once per store, by whichever
process gets there first (its own crawl hook, or the sweep of the `monitor-deliveries` task on
any node), and a process that dies between storing and clustering leaves markers, not holes.

Existing articles without a cluster (stored before migration 0013 and never rebuilt, or left by
a crashed process) are marked here, so the sweep clusters them in short batches beside the
running service; marking is one INSERT ... SELECT, with no sketching in the migration.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mediabeat.db import rls
from mediabeat.db.tables import UTCDateTime

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLE = "story_pending"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("article_id", _ID, nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("stored_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"], ["articles.id"], name=op.f("fk_story_pending_article_id_articles"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_story_pending_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("article_id", name=op.f("pk_story_pending")),
    )
    op.create_index("ix_story_pending_org_id_article_id", TABLE, ["org_id", "article_id"])
    op.execute(
        f"INSERT INTO {TABLE} (article_id, org_id, stored_at) "
        "SELECT a.id, a.org_id, a.created_at FROM articles AS a "
        "WHERE NOT EXISTS (SELECT 1 FROM article_clusters AS c WHERE c.article_id = a.id)"
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in rls.service_only_statements(TABLE):
            op.execute(statement)


def downgrade() -> None:
    op.drop_table(TABLE)
