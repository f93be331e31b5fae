"""Alert rules per task, and the alerts they sent: plain types and the checks on a change. No I/O.

A task without a rules row behaves as every task did before rules existed: one alert when
it starts failing, one when it recovers, to the global channels (MEDIABEAT_ALERT_WEBHOOK_URL,
MEDIABEAT_ALERT_EMAIL_TO).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from mediabeat.domain.scheduler import TaskValidationError

MAX_AFTER_FAILURES = 1000
MAX_SECONDS = 30 * 24 * 3600
MAX_P95_FACTOR = 1000.0
MAX_MUTE = timedelta(days=366)
_EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+")
_DURATION = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class AlertKind(enum.StrEnum):
    """What an alert is about; the value is stored, sent as `kind` and used as the metric's `kind` label."""

    FAILURE = "failure"  # N runs in a row failed (N = after_failures)
    RECOVERY = "recovery"  # a run succeeded after a failure alert
    LATE = "late"  # an occurrence has not started within its grace period
    MISSING = "missing"  # occurrences the scheduler passed without running them
    SLOW = "slow"  # a run took longer than its limit


@dataclass(frozen=True, slots=True)
class AlertRules:
    """One task's rules. None (or False) switches a rule off; `updated_at` is when they last changed."""

    task_id: int
    after_failures: int = 1
    late_after_s: int | None = None
    missing: bool = False
    slower_than_s: int | None = None
    slower_than_p95: float | None = None
    mute_until: datetime | None = None
    webhook_url: str | None = None
    email: str | None = None
    updated_at: datetime | None = None

    def muted(self, now: datetime) -> bool:
        return self.mute_until is not None and now < self.mute_until

    @property
    def watches_time(self) -> bool:
        """Whether the periodic check has anything to look at for this task (late, missing or slow)."""
        return bool(self.late_after_s or self.missing or self.slower_than_s or self.slower_than_p95)

    @property
    def has_own_channel(self) -> bool:
        """Alerts go to the task's own webhook and/or address instead of the global channels."""
        return bool(self.webhook_url or self.email)


@dataclass(frozen=True, slots=True)
class AlertRuleChanges:
    """Rules to change; None leaves one as it is, 0 or "" switches it off (or clears the address)."""

    after_failures: int | None = None
    late_after_s: int | None = None
    missing: bool | None = None
    slower_than_s: int | None = None
    slower_than_p95: float | None = None
    mute_until: datetime | None = None
    unmute: bool = False
    webhook_url: str | None = None
    email: str | None = None

    @property
    def empty(self) -> bool:
        return self == AlertRuleChanges()


@dataclass(frozen=True, slots=True)
class TaskAlertRecord:
    """One alert a rule raised: sent, or held back by a mute (`muted`)."""

    id: int
    task_id: int
    kind: AlertKind
    key: str  # what makes it unique for its task and kind: a run id or an occurrence
    run_id: int | None
    occurrence: datetime | None
    message: str
    destination: str  # "global", or the task's own webhook/address
    muted: bool
    node_id: str | None
    created_at: datetime


def apply_rule_changes(rules: AlertRules, changes: AlertRuleChanges, *, now: datetime) -> AlertRules:
    """The rules after `changes`, each value checked; TaskValidationError names the field at fault."""
    values: dict[str, Any] = {}
    if changes.after_failures is not None:
        if not 1 <= changes.after_failures <= MAX_AFTER_FAILURES:
            raise TaskValidationError("alert_after_failures", f"must be between 1 and {MAX_AFTER_FAILURES}")
        values["after_failures"] = changes.after_failures
    for name, field in (("late_after_s", "alert_late_s"), ("slower_than_s", "alert_slower_than_s")):
        seconds = getattr(changes, name)
        if seconds is not None:
            if not 0 <= seconds <= MAX_SECONDS:
                raise TaskValidationError(field, f"must be between 1 and {MAX_SECONDS} seconds, or 0 for off")
            values[name] = seconds or None
    if changes.slower_than_p95 is not None:
        if not 0 <= changes.slower_than_p95 <= MAX_P95_FACTOR or 0 < changes.slower_than_p95 < 1:
            raise TaskValidationError("alert_slower_than_p95", f"must be between 1 and {MAX_P95_FACTOR}, or 0 for off")
        values["slower_than_p95"] = changes.slower_than_p95 or None
    if changes.missing is not None:
        values["missing"] = changes.missing
    values.update(_channel_values(changes))
    # updated_at marks where late, missing and slow start looking: a mute alone does not move it.
    if any(getattr(rules, name) != value for name, value in values.items()) or rules.updated_at is None:
        values["updated_at"] = now
    values.update(_mute_values(changes, now))
    return replace(rules, **values)


def _channel_values(changes: AlertRuleChanges) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    if changes.webhook_url is not None:
        url = changes.webhook_url.strip()
        parts = urlsplit(url)
        if url and (parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000):
            raise TaskValidationError("alert_webhook_url", "must be an http:// or https:// URL, or empty for none")
        values["webhook_url"] = url or None
    if changes.email is not None:
        address = changes.email.strip()
        if address and (not _EMAIL.fullmatch(address) or len(address) > 254):
            raise TaskValidationError("alert_email", "must be one address such as ops@example.org, or empty for none")
        values["email"] = address or None
    return values


def _mute_values(changes: AlertRuleChanges, now: datetime) -> dict[str, datetime | None]:
    if changes.unmute:
        return {"mute_until": None}
    if changes.mute_until is None:
        return {}
    until = changes.mute_until if changes.mute_until.tzinfo else changes.mute_until.replace(tzinfo=UTC)
    if until <= now:
        raise TaskValidationError("mute_until", "must be in the future (to unmute, use off)")
    if until - now > MAX_MUTE:
        raise TaskValidationError("mute_until", "must be within a year")
    return {"mute_until": until.astimezone(UTC)}


def parse_mute_until(text: str, now: datetime) -> tuple[datetime | None, bool]:
    """`--mute-until` text: an ISO 8601 time (no offset means UTC), a duration from now such as
    30m, 2h or 1d, or "off"; returns (until, unmute)."""
    text = text.strip().lower()
    if text in ("off", "none", "no", ""):
        return None, True
    if match := _DURATION.fullmatch(text):
        return now + timedelta(seconds=int(match[1]) * _UNITS[match[2]]), False
    try:
        when = datetime.fromisoformat(text.upper())
    except ValueError:
        raise TaskValidationError(
            "mute_until", f"{text!r} is not a time: use e.g. 2h, 1d, 2026-12-24T08:00 or off"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)), False


def describe_rules(rules: AlertRules) -> list[str]:
    """The rules in words, one line each (for `tasks show` and the task page)."""
    failures = "the first failure" if rules.after_failures == 1 else f"{rules.after_failures} failures in a row"
    lines = [f"Failure: after {failures} (retries used up); recovery when it succeeds again"]
    if rules.late_after_s:
        lines.append(f"Late: a run not started {rules.late_after_s} s after its due time")
    if rules.missing:
        lines.append("Missing: an occurrence that never ran")
    if rules.slower_than_s:
        lines.append(f"Slow: a run longer than {rules.slower_than_s} s")
    if rules.slower_than_p95:
        lines.append(f"Slow: a run longer than {rules.slower_than_p95:g} x the p95 of recent runs")
    own = ", ".join(part for part in (rules.webhook_url, rules.email) if part)
    lines.append(f"Sent to: {own or 'the global channels'}")
    return lines
