"""`serve --demo`'s first fetch and crawl: a crawl that finds the queue empty is news, not a warning."""

from __future__ import annotations

import logging

import pytest

from mediabeat.app import build_services
from mediabeat.cli.demo_cmd import _run_task_once
from mediabeat.settings import load_settings


async def test_an_empty_crawl_queue_is_logged_once_as_info(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    services = build_services(load_settings(database_url=database_url, enable_scheduler=False))
    try:
        with caplog.at_level(logging.INFO, logger="mediabeat.demo"):
            result = await _run_task_once(services, "crawl-queue")
    finally:
        await services.close()
    assert result is None
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "mediabeat.demo"]
    assert said == [("INFO", "demo: crawl-queue skipped: queue empty")]
