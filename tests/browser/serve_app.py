"""Test-only launcher: the real app on 127.0.0.1 with extra handlers the browser tests schedule.

`always_fails` raises like a broken feed server; `slow_success` takes a moment, so a run is seen running
before it ends; `counting` returns result counts like a feed fetch's. Settings come from the environment as
for `mediabeat serve`. Never used by the product.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from typing import Any

import uvicorn

from mediabeat.app import build_services, create_app
from mediabeat.settings import load_settings
from mediabeat.tasks.base import RunContext
from mediabeat.testing import FailingHandler

FAILURE_MESSAGE = "the feed server answered 503 Service Unavailable"


class SlowSuccess:
    """Succeeds after a short wait, with result counts."""

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        await asyncio.sleep(1.5)
        return {"feeds_checked": 12, "articles_queued": 3}


class CountingSuccess:
    """Succeeds at once with the kind of counts hourly-rss-fetch records, nested error kinds included."""

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        errors = {"blocked": 12, "http_503": 1}
        return {"feeds": 5, "fetched": 2, "not_modified": 3, "jobs_created": 7, "errors": errors}


def main(port: int) -> None:
    settings = load_settings()
    services = build_services(settings)
    services.registry.register("always_fails", FailingHandler(FAILURE_MESSAGE))
    services.registry.register("slow_success", SlowSuccess())
    services.registry.register("counting", CountingSuccess())
    app = create_app(settings, services=services)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(int(sys.argv[1]))
