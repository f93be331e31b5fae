"""Story clusters: near-duplicate articles of one organisation, grouped through MinHash LSH.

`story_clusters` are the clusters; `article_clusters` holds each clustered article's cluster and
MinHash signature; `article_bands` is the LSH index (an article's band hashes, the band number
hashed in), indexed on (org_id, band_hash) so that finding the candidates of a whole batch of
articles is one indexed query, from any process. On PostgreSQL the three tables get the
row-level security of the other org tables.

Existing articles are clustered by `mediabeat stories rebuild`, not here: the sketches need
datasketch and a few milliseconds per article, so a large database would hold the migration
(and every process waiting on it) for minutes, while the command works in short batches,
can be stopped and resumed, and runs beside the service. Until it runs, an old article has no
cluster (`cluster_id` null) and new ones cluster among themselves.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mediabeat.db import rls
from mediabeat.db.tables import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "story_clusters",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_story_clusters_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_story_clusters")),
    )
    op.create_table(
        "article_clusters",
        sa.Column("article_id", _ID, nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("cluster_id", _ID, nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("clustered_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"], ["articles.id"], name=op.f("fk_article_clusters_article_id_articles"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_article_clusters_org_id_organizations"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["story_clusters.id"],
            name=op.f("fk_article_clusters_cluster_id_story_clusters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("article_id", name=op.f("pk_article_clusters")),
    )
    op.create_index("ix_article_clusters_org_id_cluster_id", "article_clusters", ["org_id", "cluster_id"])
    op.create_index("ix_article_clusters_cluster_id", "article_clusters", ["cluster_id"])
    op.create_table(
        "article_bands",
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("band_no", sa.SmallInteger(), nullable=False),
        sa.Column("band_hash", sa.BigInteger(), nullable=False),
        sa.Column("article_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["article_clusters.article_id"],
            name=op.f("fk_article_bands_article_id_article_clusters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("article_id", "band_no", name=op.f("pk_article_bands")),
    )
    op.create_index("ix_article_bands_org_id_band_hash", "article_bands", ["org_id", "band_hash"])
    if op.get_bind().dialect.name == "postgresql":
        for statement in rls.story_table_statements():
            op.execute(statement)


def downgrade() -> None:
    op.drop_table("article_bands")
    op.drop_table("article_clusters")
    op.drop_table("story_clusters")
