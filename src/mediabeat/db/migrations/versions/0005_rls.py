"""Least privilege on PostgreSQL: application and member roles, grants, row-level security on org data.

A no-op on SQLite. See mediabeat/db/rls.py for what each role may do.

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

from mediabeat.db import rls

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in rls.upgrade_statements():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in rls.downgrade_statements():
        op.execute(statement)
