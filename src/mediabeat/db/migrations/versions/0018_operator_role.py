"""The operator role: users.role may be 'operator' too (between member and admin; domain/access.py).

Only the CHECK constraint changes. On SQLite that rebuilds the small `users` table (batch mode copies
its rows; foreign keys are not enforced during migrations, so sessions and tokens keep theirs).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

WITH_OPERATOR = "role IN ('admin', 'operator', 'member')"
WITHOUT_OPERATOR = "role IN ('admin', 'member')"
users = sa.table("users", sa.column("role", sa.String), sa.column("is_active", sa.Boolean))


def _set_check(condition: str) -> None:
    with op.batch_alter_table(
        "users", recreate="always" if op.get_bind().dialect.name == "sqlite" else "auto"
    ) as batch:
        batch.drop_constraint(op.f("ck_users_role"), type_="check")
        batch.create_check_constraint(op.f("ck_users_role"), condition)


def upgrade() -> None:
    _set_check(WITH_OPERATOR)


def downgrade() -> None:
    # The old schema has no role that grants what an operator had, and admin grants more: operators
    # become deactivated members, for an admin to reactivate as whatever fits.
    op.execute(users.update().where(users.c.role == "operator").values(role="member", is_active=False))
    _set_check(WITHOUT_OPERATOR)
