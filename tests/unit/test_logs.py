"""Log lines carry the run they were emitted in, and only that run, in text and in JSON."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from mediabeat.logs import log_handler, run_log_context


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO, io.StringIO]]:
    text, as_json = io.StringIO(), io.StringIO()
    logger = logging.getLogger("mediabeat.test-logs")
    handlers = [log_handler("text", text), log_handler("json", as_json)]
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, text, as_json
    for handler in handlers:
        logger.removeHandler(handler)


async def test_concurrent_runs_tag_their_own_records(logged: tuple[logging.Logger, io.StringIO, io.StringIO]) -> None:
    logger, text, as_json = logged

    async def run(run_id: int, task: str) -> None:
        with run_log_context(run_id, task):
            logger.info("starting %s", task)
            await asyncio.sleep(0)  # let the other run log in between
            logger.info("done")

    logger.info("before")
    await asyncio.gather(run(1, "fetch"), run(2, "crawl"))
    logger.info("after")

    records = [json.loads(line) for line in as_json.getvalue().splitlines()]
    assert [(r["message"], r.get("run_id"), r.get("task")) for r in records] == [
        ("before", None, None),
        ("starting fetch", 1, "fetch"),
        ("starting crawl", 2, "crawl"),
        ("done", 1, "fetch"),
        ("done", 2, "crawl"),
        ("after", None, None),
    ]
    assert {r["level"] for r in records} == {"INFO"} and {r["logger"] for r in records} == {logger.name}
    lines = text.getvalue().splitlines()
    assert lines[1].endswith("INFO mediabeat.test-logs: starting fetch [run 1 fetch]")
    assert lines[0].endswith("INFO mediabeat.test-logs: before")


def test_json_carries_the_exception(logged: tuple[logging.Logger, io.StringIO, io.StringIO]) -> None:
    logger, _, as_json = logged
    try:
        raise ValueError("bad feed")
    except ValueError:
        logger.exception("the run failed")
    (record,) = [json.loads(line) for line in as_json.getvalue().splitlines()]
    assert record["level"] == "ERROR" and "ValueError: bad feed" in record["exception"]
