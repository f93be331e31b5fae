"""Story-cluster process tests' worker: `python -m tests.processes.story_worker_main MODE ORG GO SECTIONS`.

MODE `store`: once the file GO exists, store the demo site's articles of SECTIONS (comma-separated)
in batches of 10, each followed by its crawl hook (the story clusterer's `on_stored`), as crawl-queue
does. MODE `die`: store them all, then kill itself with SIGKILL before any hook runs (a crash between
storing and clustering). MODE `sweep`: once GO exists, run the sweep once (no settle time) and print
how many articles it placed. The database is MEDIABEAT_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mediabeat.clock import SystemClock
from mediabeat.db.engine import Database
from mediabeat.db.stores.articles import ArticleStore
from mediabeat.db.stores.stories import StoryStore
from mediabeat.stories.clusterer import StoryClusterer
from tests.story_helpers import new_article

NUMBERS = range(40)
BATCH = 10


async def main(mode: str, org_id: int, go: Path, sections: list[str]) -> None:
    db = Database(os.environ["MEDIABEAT_DATABASE_URL"])
    clusterer = StoryClusterer(store=StoryStore(db), clock=SystemClock())
    while not go.exists():
        time.sleep(0.01)
    try:
        if mode == "sweep":
            print(await clusterer.catch_up_all(settle=timedelta(0)), flush=True)
            return
        articles = [new_article(org_id, s, n) for s in sections for n in NUMBERS]
        store = ArticleStore(db)
        for start in range(0, len(articles), BATCH):
            batch = articles[start : start + BATCH]
            ids = await store.save_many(batch, now=datetime.now(UTC))
            if mode == "store":
                await clusterer.on_stored(list(zip(ids, batch, strict=True)))
        if mode == "die":
            os.kill(os.getpid(), signal.SIGKILL)
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4].split(",") if sys.argv[4:] else []))
