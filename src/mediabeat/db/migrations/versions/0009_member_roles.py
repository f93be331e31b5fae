"""PostgreSQL member scope from the login role, not from a setting the client chooses.

Migration 0005 scoped `mediabeat_member` connections to the organisation in the
`app.org_id` setting, which any client can set (`SET app.org_id = '2'`), so a member login
could read every organisation. Now the table member_roles maps each member login role to
its organisation, and the policies compare with `mediabeat_member_org()`, a SECURITY
DEFINER function that reads the row of `session_user`. Members can neither read nor change
the table. The table exists on SQLite too (the schema is one), unused there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mediabeat.db import rls
from mediabeat.db.tables import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        rls.MEMBER_ROLES_TABLE,
        sa.Column("role_name", sa.String(63), nullable=False),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("role_name", name=op.f("pk_member_roles")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_member_roles_org_id_organizations"), ondelete="CASCADE"
        ),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in rls.member_scope_statements():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in rls.setting_scope_statements():
            op.execute(statement)
    op.drop_table(rls.MEMBER_ROLES_TABLE)
