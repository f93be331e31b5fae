"""Failed sign-ins, counted per account and per IP address within a window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.tables import login_failures as failures_t


@dataclass(frozen=True, slots=True)
class LoginLimit:
    """Refuse sign-ins after max_per_account failures for an email, or max_per_ip from an address, within window."""

    max_per_account: int
    max_per_ip: int
    window: timedelta


class LoginLimiter:
    def __init__(self, db: Database, limit: LoginLimit) -> None:
        self.db = db
        self.limit = limit

    async def retry_after(self, email: str, ip: str, *, now: datetime) -> int | None:
        """Seconds until a sign-in may be tried again, or None when it may be tried now."""
        since = now - self.limit.window
        async with self.db.read() as conn:
            for column, value, most in (
                (failures_t.c.email, email, self.limit.max_per_account),
                (failures_t.c.ip, ip, self.limit.max_per_ip),
            ):
                row = (
                    await conn.execute(
                        sa.select(sa.func.count(), sa.func.min(failures_t.c.created_at)).where(
                            column == value, failures_t.c.created_at > since
                        )
                    )
                ).one()
                count, oldest = row[0], row[1]
                if count >= most and oldest is not None:
                    if oldest.tzinfo is None:
                        oldest = oldest.replace(tzinfo=now.tzinfo)
                    return max(1, int((oldest + self.limit.window - now).total_seconds()) + 1)
        return None

    async def record_failure(self, email: str, ip: str, *, now: datetime) -> None:
        async with self.db.write() as conn:
            await conn.execute(failures_t.delete().where(failures_t.c.created_at <= now - self.limit.window))
            await conn.execute(failures_t.insert().values(email=email, ip=ip, created_at=now))

    async def clear_account(self, email: str) -> None:
        """Forget an account's failures after it signs in."""
        async with self.db.write() as conn:
            await conn.execute(failures_t.delete().where(failures_t.c.email == email))
