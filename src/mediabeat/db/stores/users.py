"""Users: email, role (admin, operator or member), org and argon2 password hash."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.stores.rows import record_of
from mediabeat.db.tables import organizations as orgs_t
from mediabeat.db.tables import users as users_t
from mediabeat.domain.content import ROLE_NAMES, Role, UserRecord

ROLES = tuple(r.value for r in Role)


class UserExists(ValueError):
    """A user with that email exists already."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _query() -> sa.Select[Any]:
    return sa.select(*users_t.c, orgs_t.c.name.label("org_name")).select_from(
        users_t.outerjoin(orgs_t, users_t.c.org_id == orgs_t.c.id)
    )


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        email: str,
        role: str,
        org_id: int | None,
        password_hash: str,
        *,
        now: datetime,
        must_change_password: bool = False,
    ) -> UserRecord:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLE_NAMES}, not {role!r}")
        email = normalise_email(email)
        async with self.db.write() as conn:
            exists = (await conn.execute(sa.select(users_t.c.id).where(users_t.c.email == email))).first()
            if exists:
                raise UserExists(f"a user with email {email} exists already")
            user_id = (
                await conn.execute(
                    users_t.insert()
                    .values(
                        email=email,
                        role=role,
                        org_id=org_id,
                        password_hash=password_hash,
                        must_change_password=must_change_password,
                        created_at=now,
                    )
                    .returning(users_t.c.id)
                )
            ).scalar_one()
            row = (await conn.execute(_query().where(users_t.c.id == user_id))).one()
            return record_of(UserRecord, row)

    async def get(self, user_id: int) -> UserRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(_query().where(users_t.c.id == user_id))).first()
            return record_of(UserRecord, row) if row else None

    async def get_by_email(self, email: str) -> UserRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(_query().where(users_t.c.email == normalise_email(email)))).first()
            return record_of(UserRecord, row) if row else None

    async def list(self, *, org_id: int | None = None) -> list[UserRecord]:
        query = _query().order_by(users_t.c.id)
        if org_id is not None:
            query = query.where(users_t.c.org_id == org_id)
        async with self.db.read() as conn:
            return [record_of(UserRecord, r) for r in await conn.execute(query)]

    async def set_password(self, user_id: int, password_hash: str, *, must_change: bool = False) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(
                users_t.update()
                .where(users_t.c.id == user_id)
                .values(password_hash=password_hash, must_change_password=must_change)
            )
            return bool(result.rowcount)

    async def set_active(self, user_id: int, active: bool) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(users_t.update().where(users_t.c.id == user_id).values(is_active=active))
            return bool(result.rowcount)

    async def set_role(self, user_id: int, role: str) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(users_t.update().where(users_t.c.id == user_id).values(role=role))
            return bool(result.rowcount)

    async def mark_login(self, user_id: int, now: datetime) -> None:
        async with self.db.write() as conn:
            await conn.execute(users_t.update().where(users_t.c.id == user_id).values(last_login_at=now))

    async def count_admins(self) -> int:
        async with self.db.read() as conn:
            query = sa.select(sa.func.count()).select_from(users_t).where(users_t.c.role == Role.ADMIN.value)
            return int((await conn.execute(query)).scalar_one())
