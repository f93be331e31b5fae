"""Service settings: the only module that reads the environment."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("data")


class SettingsError(Exception):
    """A setting has a bad value; the message names the variable and says what is wrong."""


PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]


class Settings(BaseSettings):
    """Everything configurable, with the environment variable that sets it."""

    model_config = SettingsConfigDict(env_prefix="MEDIABEAT_", extra="ignore", populate_by_name=True, frozen=True)

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_DATA_DIR / 'mediabeat.db'}",
        description="SQLAlchemy-style URL: sqlite:///path or postgresql://user@host/db",
    )
    enable_scheduler: bool = Field(
        default=True,
        validation_alias=AliasChoices("ENABLE_SCHEDULER", "MEDIABEAT_ENABLE_SCHEDULER"),
        description="Run the automatic scheduler loop (the API and run-now work either way)",
    )
    tick_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=60.0, description="Longest the loop sleeps before it looks for due tasks again"
    )
    heartbeat_seconds: Annotated[float, Field(gt=0, le=300)] = Field(
        default=5.0, description="How often a node marks its running runs alive"
    )
    node_heartbeat_seconds: Annotated[float, Field(gt=0, le=300)] | None = Field(
        default=None,
        description="How often a node marks itself alive in scheduler_nodes and renews the maintenance lease, "
        "which lapses after three beats (default: MEDIABEAT_HEARTBEAT_SECONDS)",
    )
    stale_after_seconds: Annotated[float, Field(gt=0, le=86400)] = Field(
        default=20.0, description="A running run with no heartbeat for this long is abandoned"
    )
    misfire_grace_seconds: Annotated[float, Field(ge=0)] = Field(
        default=60.0, description="An occurrence started later than this after its due time is a misfire"
    )
    max_catch_up: PositiveInt = Field(default=24, description="Most missed occurrences that the catch_up policy runs")
    claim_batch: PositiveInt = Field(default=1000, description="Most due tasks one tick claims")
    node_id: str | None = Field(default=None, description="This process's node id (default host:pid)")

    job_retention_days: PositiveInt = Field(
        default=30, description="nightly-cleanup deletes crawl jobs older than this"
    )
    run_retention_days: PositiveInt = Field(default=60, description="nightly-cleanup deletes task runs older than this")
    cleanup_batch_size: PositiveInt = Field(default=5000, description="Rows nightly-cleanup deletes per statement")

    crawl_batch: PositiveInt = Field(default=100, description="Most crawl jobs one crawl-queue run claims")
    crawler_allow_private_networks: bool = Field(
        default=False, description="Let the crawler reach loopback and private addresses (tests, demo)"
    )
    crawler_user_agent: str = Field(
        default="MediaBeat/0.1 (+https://github.com/mediabeat/mediabeat)",
        description="User-Agent of every crawler request; keep a contact URL in it",
    )

    alert_webhook_url: str | None = Field(
        default=None,
        description="POST a JSON alert here when a task starts failing and when it recovers (Slack-compatible)",
    )
    public_url: str | None = Field(
        default=None, description="Where people reach this service, for links in alerts (e.g. https://beat.example.org)"
    )

    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")

    # Simulated time, for multi-process tests and demos: the clock starts at clock_epoch
    # (at real time clock_origin, a Unix timestamp) and runs clock_speed times faster.
    clock_epoch: datetime | None = Field(default=None, description="Simulated time: where the clock starts (testing)")
    clock_speed: Annotated[float, Field(gt=0)] = Field(
        default=1.0, description="Simulated time: how much faster it runs"
    )
    clock_origin: float | None = Field(
        default=None, description="Simulated time: the Unix time at which it is clock_epoch (default: start-up)"
    )

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @property
    def resolved_node_heartbeat_seconds(self) -> float:
        return self.node_heartbeat_seconds or self.heartbeat_seconds

    @property
    def resolved_node_id(self) -> str:
        import os
        import socket

        return self.node_id or f"{socket.gethostname()}:{os.getpid()}"


def _variable_name(field: str) -> str:
    if field.isupper():  # the error is already keyed by the variable (an alias)
        return field
    info = Settings.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, AliasChoices):
        first = info.validation_alias.choices[0]
        return str(first)
    return f"MEDIABEAT_{field.upper()}"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; a bad value raises SettingsError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise SettingsError(f"{_variable_name(field)}: {first['msg']}") from None
