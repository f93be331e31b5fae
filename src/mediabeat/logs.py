"""Log output as text or as one JSON object a line, with the run id and task on what a run logs."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True, slots=True)
class RunTag:
    run_id: int
    task: str


# Each run executes in an asyncio task of its own, which copies the context: the tag follows the run's
# code (the handler, recording the end, alerts) and nothing else.
_current_run: ContextVar[RunTag | None] = ContextVar("mediabeat_current_run", default=None)


@contextlib.contextmanager
def run_log_context(run_id: int, task: str) -> Iterator[None]:
    """Tag every record logged inside the block with this run's id and task name."""
    token = _current_run.set(RunTag(run_id, task))
    try:
        yield
    finally:
        _current_run.reset(token)


class RunTagFilter(logging.Filter):
    """Copies the current run's tag onto each record (`run_id`, `task`; None outside a run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        tag = _current_run.get()
        record.run_id = tag.run_id if tag else None
        record.task = tag.task if tag else None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message; run_id and task within a run."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        run_id = getattr(record, "run_id", None)
        if run_id is not None:
            entry["run_id"] = run_id
            entry["task"] = getattr(record, "task", None)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with `[run 12 nightly-cleanup]` at the end of what a run logs."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        run_id = getattr(record, "run_id", None)
        return line if run_id is None else f"{line} [run {run_id} {getattr(record, 'task', '')}]"


def log_handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    """A stderr handler (or `stream`) in `log_format`, "text" or "json", that tags records with the run."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RunTagFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


def configure_logging(level: str, log_format: str) -> None:
    """Send the root logger's records to stderr; leaves logging alone when it is already set up (as in tests)."""
    logging.basicConfig(level=level, handlers=[log_handler(log_format)])
