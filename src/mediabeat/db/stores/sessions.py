"""Dashboard sign-ins: an opaque random session id (stored hashed) with an expiry and a CSRF token."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.stores.tokens import TOUCH_EVERY, Owner
from mediabeat.db.tables import user_sessions as sessions_t
from mediabeat.db.tables import users as users_t
from mediabeat.domain.secrets import generate_csrf_token, generate_session_id, hash_secret


class SessionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, user_id: int, *, now: datetime, lifetime: timedelta, ip: str | None, user_agent: str | None
    ) -> tuple[str, str]:
        """Start a session; returns (session id for the cookie, CSRF token). Expired sessions are purged."""
        session_id = generate_session_id()
        csrf = generate_csrf_token()
        async with self.db.write() as conn:
            await conn.execute(sessions_t.delete().where(sessions_t.c.expires_at < now))
            await conn.execute(
                sessions_t.insert().values(
                    user_id=user_id,
                    token_hash=hash_secret(session_id),
                    csrf_token=csrf,
                    ip=ip,
                    user_agent=(user_agent or "")[:400] or None,
                    expires_at=now + lifetime,
                    last_seen_at=now,
                    created_at=now,
                )
            )
        return session_id, csrf

    async def owner_of(self, session_id: str, *, now: datetime) -> Owner | None:
        """The active user of a live session, with its CSRF token."""
        query = (
            sa.select(
                sessions_t.c.id.label("credential_id"),
                sessions_t.c.csrf_token,
                sessions_t.c.last_seen_at,
                users_t.c.id.label("user_id"),
                users_t.c.email,
                users_t.c.role,
                users_t.c.org_id,
                users_t.c.must_change_password,
            )
            .select_from(sessions_t.join(users_t, sessions_t.c.user_id == users_t.c.id))
            .where(
                sessions_t.c.token_hash == hash_secret(session_id), sessions_t.c.expires_at > now, users_t.c.is_active
            )
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        if row.last_seen_at is None or now - row.last_seen_at >= TOUCH_EVERY:
            async with self.db.write() as conn:
                await conn.execute(
                    sessions_t.update().where(sessions_t.c.id == row.credential_id).values(last_seen_at=now)
                )
        return Owner(
            credential_id=row.credential_id,
            user_id=row.user_id,
            email=row.email,
            role=row.role,
            org_id=row.org_id,
            csrf_token=row.csrf_token,
            must_change_password=bool(row.must_change_password),
        )

    async def delete(self, session_id: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(sessions_t.delete().where(sessions_t.c.token_hash == hash_secret(session_id)))

    async def delete_for_user(self, user_id: int) -> int:
        """End every session of a user (after a password change)."""
        async with self.db.write() as conn:
            result = await conn.execute(sessions_t.delete().where(sessions_t.c.user_id == user_id))
            return int(result.rowcount or 0)
