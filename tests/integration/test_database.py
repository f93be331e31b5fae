"""How the service's connections behave on PostgreSQL: the session time zone, and reads that hold no transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mediabeat.db.engine import Database
from mediabeat.db.tables import organizations

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


async def test_instants_come_back_in_utc_whatever_the_server_time_zone(database_url: str) -> None:
    name = make_url(database_url).database
    setup = Database(database_url)
    async with setup.write() as conn:
        await conn.exec_driver_sql(f"ALTER DATABASE \"{name}\" SET timezone = 'Asia/Kolkata'")
    await setup.dispose()

    db = Database(database_url)
    try:
        stored = datetime(2026, 3, 1, 23, 45, tzinfo=timezone(timedelta(hours=-5)))
        async with db.write() as conn:
            await conn.execute(organizations.insert().values(name="Org", created_at=stored))
        async with db.read() as conn:
            assert (await conn.exec_driver_sql("SHOW timezone")).scalar() == "UTC"
            read = (await conn.execute(sa.select(organizations.c.created_at))).scalar_one()
            text = (await conn.exec_driver_sql("SELECT created_at::text FROM organizations")).scalar_one()
        assert read == stored
        assert read.tzinfo is UTC
        assert text == "2026-03-02 04:45:00+00"
    finally:
        await db.dispose()


async def test_a_read_holds_no_transaction_and_a_write_does(db: Database) -> None:
    async def state(pid: int) -> str:
        async with db.engine.connect() as other:
            query = sa.text("SELECT state FROM pg_stat_activity WHERE pid = :pid")
            return str((await other.execute(query, {"pid": pid})).scalar_one())

    async with db.read() as conn:
        pid = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
        # A read's snapshot ends with its statement: a long read does not hold back vacuum.
        assert await state(pid) == "idle"
    async with db.write() as conn:
        pid = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
        assert await state(pid) == "idle in transaction"
