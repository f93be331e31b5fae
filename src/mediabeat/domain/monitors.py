"""Monitors: saved queries that match new articles as they are stored, and how their matches are delivered."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from mediabeat.domain.content import Conflict, InvalidInput, NotFound

MAX_MONITOR_NAME = 200
MAX_QUERY_LENGTH = 1_000  # the search language's own limit


class Digest(enum.StrEnum):
    """How matches are delivered: each burst as it happens (after the cool-down), or one message an hour or a day."""

    NONE = "none"
    HOURLY = "hourly"
    DAILY = "daily"


class DeliveryChannel(enum.StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


class DeliveryKind(enum.StrEnum):
    MATCHES = "matches"
    DIGEST = "digest"
    SPIKE = "spike"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class MonitorRecord:
    id: int
    org_id: int
    name: str
    query: str
    webhook_url: str | None
    email: str | None
    digest: Digest
    cooldown_s: int
    spike_alerts: bool
    active: bool
    start_after_article_id: int
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    last_delivered_at: datetime | None
    last_spike_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewMonitor:
    """What a create asks for, before validation."""

    name: str
    query: str
    webhook_url: str | None = None
    email: str | None = None
    digest: Digest = Digest.NONE
    cooldown_s: int = 300
    spike_alerts: bool = False


@dataclass(frozen=True, slots=True)
class MonitorChange:
    """A patch: None leaves a field as it is; "" clears webhook_url or email."""

    query: str | None = None
    webhook_url: str | None = None
    email: str | None = None
    digest: Digest | None = None
    cooldown_s: int | None = None
    spike_alerts: bool | None = None
    active: bool | None = None


@dataclass(frozen=True, slots=True)
class MonitorMatch:
    """One recorded match, with the article's facts a delivery or an export shows."""

    id: int
    monitor_id: int
    article_id: int
    matched_at: datetime
    delivered_at: datetime | None
    url: str
    title: str | None
    published_at: datetime | None
    summary: str | None


@dataclass(frozen=True, slots=True)
class MonitorMatchDoc:
    """An article as the matcher sees it: the text fields a query looks at, and its filters."""

    id: int
    org_id: int
    feed_id: int | None
    url: str
    title: str | None
    summary: str | None
    text: str | None
    language: str | None
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: int
    monitor_id: int
    channel: DeliveryChannel
    kind: DeliveryKind
    status: DeliveryStatus
    payload: dict[str, object]
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class MonitorNotFound(NotFound):
    def __init__(self, key: object) -> None:
        super().__init__("monitor", key)


class MonitorExists(Conflict):
    """The organisation has a monitor of this name already."""


class BadMonitorQuery(InvalidInput):
    def __init__(self, message: str) -> None:
        super().__init__("query", message)


class BadWebhookUrl(InvalidInput):
    def __init__(self, message: str) -> None:
        super().__init__("webhook_url", message)
