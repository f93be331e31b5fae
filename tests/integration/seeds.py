"""For scheduler tests written against the seeded nightly-cleanup alone: remove the crawler's seeded tasks."""

from __future__ import annotations

from mediabeat.db.engine import Database
from mediabeat.db.tables import scheduler_tasks

CRAWLER_TASKS = ("hourly-rss-fetch", "crawl-queue", "monitor-deliveries", "websub-renew")


async def only_cleanup_seeded(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(scheduler_tasks.delete().where(scheduler_tasks.c.name.in_(CRAWLER_TASKS)))
