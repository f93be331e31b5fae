"""Records as JSON-ready dicts, for the CLI's --json and anything else that prints a record."""

from __future__ import annotations

import enum
from dataclasses import asdict
from datetime import datetime
from typing import Any


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def jsonable(record: object) -> dict[str, Any]:
    """A record as a JSON-ready dict: datetimes become ISO 8601 strings with their offset, enums their values."""
    data = asdict(record)  # type: ignore[call-overload]
    return {k: _plain(v) for k, v in data.items()}
