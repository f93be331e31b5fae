"""API tokens: stored as a SHA-256 hash with a clear prefix, a name, last use and revocation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.stores.rows import record_of
from mediabeat.db.tables import api_tokens as tokens_t
from mediabeat.db.tables import users as users_t
from mediabeat.domain.content import TokenRecord

# last_used_at is written at most this often per token, so reads stay reads.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Owner:
    """Who a credential (token or session) belongs to."""

    credential_id: int
    user_id: int
    email: str
    role: str
    org_id: int | None
    csrf_token: str | None = None
    must_change_password: bool = False


def _query() -> sa.Select[Any]:
    return sa.select(
        tokens_t.c.id,
        tokens_t.c.user_id,
        users_t.c.email,
        tokens_t.c.name,
        tokens_t.c.prefix,
        tokens_t.c.last_used_at,
        tokens_t.c.revoked_at,
        tokens_t.c.created_at,
    ).select_from(tokens_t.join(users_t, tokens_t.c.user_id == users_t.c.id))


class TokenStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, user_id: int, name: str, token_hash: str, prefix: str, *, now: datetime) -> TokenRecord:
        async with self.db.write() as conn:
            token_id = (
                await conn.execute(
                    tokens_t.insert()
                    .values(user_id=user_id, name=name, token_hash=token_hash, prefix=prefix, created_at=now)
                    .returning(tokens_t.c.id)
                )
            ).scalar_one()
            return record_of(TokenRecord, (await conn.execute(_query().where(tokens_t.c.id == token_id))).one())

    async def get(self, token_id: int) -> TokenRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(_query().where(tokens_t.c.id == token_id))).first()
            return record_of(TokenRecord, row) if row else None

    async def list(self, *, user_id: int | None = None) -> list[TokenRecord]:
        query = _query().order_by(tokens_t.c.id)
        if user_id is not None:
            query = query.where(tokens_t.c.user_id == user_id)
        async with self.db.read() as conn:
            return [record_of(TokenRecord, r) for r in await conn.execute(query)]

    async def owner_of(self, token_hash: str, *, now: datetime) -> Owner | None:
        """The active user owning a live token with that hash; stamps last_used_at now and then."""
        query = (
            sa.select(
                tokens_t.c.id.label("credential_id"),
                tokens_t.c.last_used_at,
                users_t.c.id.label("user_id"),
                users_t.c.email,
                users_t.c.role,
                users_t.c.org_id,
            )
            .select_from(tokens_t.join(users_t, tokens_t.c.user_id == users_t.c.id))
            .where(tokens_t.c.token_hash == token_hash, tokens_t.c.revoked_at.is_(None), users_t.c.is_active)
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
            async with self.db.write() as conn:
                await conn.execute(tokens_t.update().where(tokens_t.c.id == row.credential_id).values(last_used_at=now))
        return Owner(
            credential_id=row.credential_id, user_id=row.user_id, email=row.email, role=row.role, org_id=row.org_id
        )

    async def revoke(self, token_id: int, *, now: datetime) -> TokenRecord | None:
        """Revoke a token (idempotent); None if there is no such token."""
        async with self.db.write() as conn:
            await conn.execute(
                tokens_t.update()
                .where(tokens_t.c.id == token_id, tokens_t.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = (await conn.execute(_query().where(tokens_t.c.id == token_id))).first()
            return record_of(TokenRecord, row) if row else None
