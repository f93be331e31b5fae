"""What /metrics reports, as one snapshot read from the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    runs: dict[tuple[str, str], int]
    jobs: dict[str, int]
    last_success: dict[str, datetime | None]
    enabled: dict[str, bool]
    feeds: dict[str, int]  # "ok", "failing" (active, with failures) and "disabled"
