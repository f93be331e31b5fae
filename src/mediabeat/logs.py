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


class RunLogCapture(logging.Handler):
    """Keeps the records (INFO and above) logged within each run this process executes, bounded per run.

    start(run_id) begins a run's buffer and finish(run_id) returns its lines; at most `max_chars`
    characters are kept, and a last line says how much was cut.
    """

    def __init__(self, max_chars: int) -> None:
        super().__init__(level=logging.INFO)
        self.max_chars = max_chars
        self._runs: dict[int, list[str]] = {}
        self._sizes: dict[int, int] = {}
        self._cut: dict[int, int] = {}
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    @property
    def active(self) -> bool:
        return bool(self._runs)

    def start(self, run_id: int) -> None:
        self._runs[run_id], self._sizes[run_id], self._cut[run_id] = [], 0, 0

    def finish(self, run_id: int) -> str | None:
        lines, cut = self._runs.pop(run_id, None), self._cut.pop(run_id, 0)
        self._sizes.pop(run_id, None)
        if not lines and not cut:
            return None
        if cut:
            (lines or []).append(f"[{cut} more log line(s) cut: MEDIABEAT_RUN_LOG_MAX_CHARS is {self.max_chars}]")
        return "\n".join(lines or [])

    def emit(self, record: logging.LogRecord) -> None:
        tag = _current_run.get()
        if tag is None or tag.run_id not in self._runs:
            return
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted is not worth failing a run for
            return
        if self._sizes[tag.run_id] + len(line) + 1 > self.max_chars:
            self._cut[tag.run_id] += 1
            return
        self._runs[tag.run_id].append(line)
        self._sizes[tag.run_id] += len(line) + 1


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
    # Alembic names each of its plugins at INFO whenever it loads: seven lines at every start, saying nothing.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
