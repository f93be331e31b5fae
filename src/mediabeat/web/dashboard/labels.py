"""Words for people in place of the stored values: statuses, triggers, fetch outcomes and result counts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Run, job and task statuses, run triggers, and what a feed fetch or a page fetch ended with.
LABELS = {
    "running": "Running",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "timed_out": "Timed out",
    "skipped": "Skipped",
    "abandoned": "Abandoned",
    "cancelled": "Cancelled",
    "queued": "Queued",
    "schedule": "Schedule",
    "manual": "Manual",
    "dependency": "After another task",
    "retry": "Retry",
    "ok": "OK",
    "not_modified": "Not modified",
    "gone": "Gone (410)",
    "blocked": "Blocked address",
    "bad_url": "Bad URL",
    "too_large": "Too large",
    "bad_encoding": "Unreadable encoding",
    "network": "Network error",
    "timeout": "Timed out",
    "redirect_loop": "Redirect loop",
    "too_many_redirects": "Too many redirects",
    "empty": "Empty feed",
    "html": "A web page, not a feed",
    "malformed": "Malformed feed",
    "robots": "Refused by robots.txt",
}
# The counts the built-in tasks record in a run's result.
RESULT_LABELS = {
    "orgs": "Organisations",
    "feeds": "Feeds due",
    "fetched": "Fetched",
    "not_modified": "Not modified",
    "failed": "Failed",
    "disabled": "Disabled",
    "moved": "Moved (new URL)",
    "entries": "Entries read",
    "jobs_created": "Crawl jobs created",
    "errors": "Errors by kind",
    "claimed": "Jobs claimed",
    "succeeded": "Succeeded",
    "retried": "Retried later",
    "lost": "Lost (lease expired)",
    "released_expired": "Expired leases released",
    "crawl_jobs_deleted": "Crawl jobs deleted",
    "task_runs_deleted": "Runs deleted",
    "task_alerts_deleted": "Alerts deleted",
    "job_retention_days": "Jobs kept (days)",
    "run_retention_days": "Runs kept (days)",
}
_HTTP = re.compile(r"^http_(\d{3})$")


def _fallback(value: str) -> str:
    words = value.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else "—"


def label(value: str | None, empty: str = "Never run") -> str:
    """'not_modified' -> 'Not modified', 'http_503' -> 'HTTP 503'; unknown values still read as words."""
    if not value:
        return empty
    found = _HTTP.match(value)
    if found:
        return f"HTTP {found.group(1)}"
    return LABELS.get(value) or _fallback(value)


def result_label(key: str) -> str:
    return RESULT_LABELS.get(key) or _fallback(key)


@dataclass(frozen=True, slots=True)
class ResultItem:
    """One line of a run's result: a label, and a plain value or, for a nested count, its own lines."""

    label: str
    value: Any
    items: list[ResultItem]


def result_items(result: Mapping[str, Any] | None) -> list[ResultItem]:
    """A handler's result dict as labelled lines in its own order; a nested dict (errors by kind) becomes sub-lines."""
    lines = []
    for key, value in (result or {}).items():
        if isinstance(value, Mapping):
            nested = [ResultItem(label(str(k)), v, []) for k, v in value.items()]
            total = sum(v for v in value.values() if isinstance(v, int) and not isinstance(v, bool))
            lines.append(ResultItem(result_label(key), total, nested))
        else:
            lines.append(ResultItem(result_label(key), value, []))
    return lines
