"""Service settings: the only module that reads the environment."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, DotEnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from mediabeat.domain.invalid import describe

ENV_FILE = ".env"
SECRET_FILE_SUFFIX = "_FILE"
# How the docs show the default database, which depends on the machine and user.
DEFAULT_DATABASE_URL_DOC = "sqlite:///$XDG_DATA_HOME/mediabeat/mediabeat.db"


def data_directory() -> Path:
    """Where MediaBeat keeps its files by default: $XDG_DATA_HOME/mediabeat, else ~/.local/share/mediabeat.

    One place for every working directory, so the CLI run from anywhere finds the service's database.
    """
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore a relative value
        return Path(xdg) / "mediabeat"
    try:
        return Path.home() / ".local" / "share" / "mediabeat"
    except RuntimeError:
        raise SettingsError(
            "MEDIABEAT_DATABASE_URL: not set, and there is no home directory for the default "
            "(~/.local/share/mediabeat): set MEDIABEAT_DATABASE_URL or XDG_DATA_HOME"
        ) from None


def default_database_url() -> str:
    return f"sqlite:///{data_directory() / 'mediabeat.db'}"


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where mail goes: smtp://[user:password@]host[:587] (STARTTLS) or smtps://...[:465] (TLS from the start)."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("must look like smtp://user:password@mail.example.org:587 or smtps://...:465")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("has a port that is not a number from 1 to 65535") from None
        tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=port or (465 if tls else 587),
            implicit_tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    @property
    def on_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


class SettingsError(Exception):
    """A setting has a bad value; the message names the variable and says what is wrong."""


PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]


class Settings(BaseSettings):
    """Everything configurable, with the environment variable that sets it."""

    model_config = SettingsConfigDict(
        env_prefix="MEDIABEAT_",
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    database_url: str = Field(
        default_factory=default_database_url,
        description="SQLAlchemy-style URL: sqlite:///path or postgresql://user@host/db. The default is the "
        "same for every working directory (~/.local/share/mediabeat/mediabeat.db when XDG_DATA_HOME is unset); "
        "a relative SQLite path is from the working directory",
    )
    enable_scheduler: bool = Field(
        default=True,
        validation_alias=AliasChoices("ENABLE_SCHEDULER", "MEDIABEAT_ENABLE_SCHEDULER"),
        description="serve runs the automatic scheduler loop (worker always does; the API and run-now work "
        "either way). Also read as MEDIABEAT_ENABLE_SCHEDULER",
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
    max_concurrent_runs: PositiveInt = Field(
        default=32,
        description="Most scheduled runs one node executes at a time; due tasks beyond it wait for a free slot "
        "or go to another node (manual and chained runs do not count against it)",
    )
    run_backlog: Annotated[int, Field(ge=0, le=100_000)] = Field(
        default=1000,
        description="Most due tasks a node claims beyond its free run slots, to start here as slots free (its "
        "backlog: one claim for a burst instead of one per wave of free slots). 0 claims only what starts at once",
    )
    run_backlog_hold_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=5.0,
        description="A claimed run that a node has not started within this long goes back to the cluster, where "
        "any node with a free slot starts it (never longer than MEDIABEAT_MISFIRE_GRACE_SECONDS)",
    )
    node_id: str | None = Field(default=None, description="This process's node id (default host:pid)")
    run_log_max_chars: Annotated[int, Field(ge=0, le=10_000_000)] = Field(
        default=64_000,
        description="Most characters of log lines (INFO and above, as MEDIABEAT_LOG_LEVEL lets through) kept with "
        "each run; a last line says how many were cut. 0 keeps none",
    )
    keep_empty_runs: bool = Field(
        default=False,
        description="Keep the rows of scheduled runs that found nothing to do (an empty crawl queue, no feed due); "
        "by default they are only counted on their task (per hour, and the last one's time). A task can ask "
        "for its own with `tasks set --keep-empty-runs`",
    )
    cancel_grace_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=30.0,
        description="How long a cancelled run's handler has to stop; after it the run is recorded cancelled "
        "and its slot freed, and the handler is left to finish alone",
    )

    job_retention_days: PositiveInt = Field(
        default=30, description="nightly-cleanup deletes crawl jobs older than this"
    )
    run_retention_days: PositiveInt = Field(default=60, description="nightly-cleanup deletes task runs older than this")
    cleanup_batch_size: PositiveInt = Field(default=5000, description="Rows nightly-cleanup deletes per statement")

    crawl_batch: PositiveInt = Field(default=100, description="Most crawl jobs one crawl-queue run claims")
    crawler_allow_private_networks: bool = Field(
        default=False,
        description="Let the crawler reach loopback addresses, 127.0.0.0/8 and ::1 (tests, the demo site); "
        "other private ranges need MEDIABEAT_CRAWLER_ALLOWED_NETWORKS",
    )
    crawler_allowed_networks: str = Field(
        default="",
        description="Private ranges the crawler may reach, comma-separated CIDR (e.g. 10.20.0.0/16, fd12:3456::/48), "
        "for feeds on an intranet; cloud metadata addresses stay refused",
    )
    crawler_offline: bool = Field(
        default=False,
        description="Refuse every request the crawler would send (a server under an API fuzzer, which must reach "
        "no fuzzed URL: adding a feed and fetching one now also fetch)",
    )
    crawler_user_agent: str = Field(
        default="MediaBeat/0.1 (+https://github.com/mediabeat/mediabeat)",
        description="User-Agent of every crawler request; keep a contact URL in it",
    )
    crawler_contact_url: str | None = Field(
        default=None, description="A page or mailto: for site owners, added to the User-Agent when not already in it"
    )
    crawler_connect_timeout: Annotated[float, Field(gt=0, le=120)] = Field(
        default=5.0, description="Seconds the crawler waits to connect"
    )
    crawler_read_timeout: Annotated[float, Field(gt=0, le=300)] = Field(
        default=10.0, description="Seconds the crawler waits for the next bytes of a response"
    )
    crawler_total_timeout: Annotated[float, Field(gt=0, le=600)] = Field(
        default=30.0, description="Seconds one fetch may take in all (redirects, retries and body included)"
    )
    crawler_max_body_bytes: PositiveInt = Field(
        default=10 * 1024 * 1024, description="Largest response body, counted after decompression"
    )
    crawler_max_redirects: NonNegativeInt = Field(default=5, description="Most redirects one fetch follows")
    crawler_per_host_concurrency: PositiveInt = Field(default=8, description="Most requests in flight to one host")
    crawler_per_host_delay: Annotated[float, Field(ge=0, le=60)] = Field(
        default=0.0, description="Seconds between the starts of two requests to the same host"
    )
    crawler_shared_politeness: bool | None = Field(
        default=None,
        description="Keep the per-host limits (concurrency, delay, Crawl-delay, 429/503 cool-downs) across every "
        "process on the same database, not only within each process (unset: on for PostgreSQL, off for SQLite, "
        "where it costs two write transactions per request; turn it on when several processes crawl one SQLite file)",
    )
    crawler_max_retry_wait: Annotated[float, Field(ge=0, le=300)] = Field(
        default=10.0,
        description="Longest wait for a 429/503 Retry-After within one fetch; a longer one becomes a cool-down of "
        "the host (at most an hour): no request goes to it until then, and its crawl jobs wait in the queue",
    )
    crawler_keep_raw_html: bool = Field(
        default=False,
        description="Keep each crawled page's HTML, zlib-compressed, in article_raw_pages, so that "
        "`mediabeat articles reextract` can extract it again after an upgrade (off by default: about 28 KB a "
        "page, 2.6 times the database without it on real pages; see docs/operations.md)",
    )
    raw_html_retention_days: PositiveInt = Field(
        default=30, description="nightly-cleanup deletes kept raw HTML fetched longer ago than this"
    )
    raw_html_max_bytes: Annotated[int, Field(ge=1024, le=100 * 1024 * 1024)] = Field(
        default=2 * 1024 * 1024,
        description="A page larger than this (before compression) is not kept as raw HTML; its article is stored",
    )
    feed_max_failures: PositiveInt = Field(
        default=10,
        description="A feed that fails this many times in a row becomes dormant: polled every "
        "MEDIABEAT_FEED_DORMANT_INTERVAL seconds instead of being disabled (a 410 Gone still disables it); a "
        "busy feed retried sooner than the 5-minute doubling backoff turns dormant after failing as long",
    )
    feed_policy: Literal["adaptive", "hourly"] = Field(
        default="adaptive",
        description="adaptive: each feed's interval follows its publishing rate, the overlap between polls and "
        "what its server asks; hourly: every feed an hour apart (the original fixed schedule)",
    )
    feed_min_interval: Annotated[int, Field(ge=60, le=86400)] = Field(
        default=300, description="Shortest interval between two fetches of one feed, in seconds (adaptive policy)"
    )
    feed_max_interval: Annotated[int, Field(ge=300, le=30 * 86400)] = Field(
        default=86400,
        description="Longest interval between two fetches of a healthy feed, in seconds (adaptive policy)",
    )
    feed_dormant_interval: Annotated[int, Field(ge=3600, le=365 * 86400)] = Field(
        default=30 * 86400, description="Interval, in seconds, at which a dormant (long-failing) feed is still tried"
    )
    feed_target_delay: Annotated[int, Field(ge=60, le=86400)] = Field(
        default=900,
        description="Adaptive policy: the longest a new item of a feed that publishes at least hourly waits, in "
        "seconds. A feed is polled every (mean gap between its entries) x this / 1 hour, never more often than "
        "every half of it: hourly feeds every 15 minutes, the busiest every 7.5, daily ones every 6 hours",
    )
    feed_polls_per_entry: Annotated[float, Field(gt=0, le=100)] | None = Field(
        default=None,
        description="Deprecated (use MEDIABEAT_FEED_TARGET_DELAY): when set, the old rule, polls per mean gap "
        "between a feed's entries (6 polled a busy feed every 5 minutes); each interval's reason says so",
    )
    feed_follow_seconds: Annotated[int, Field(ge=0, le=3600)] = Field(
        default=50,
        description="A scheduled hourly-rss-fetch run keeps fetching feeds as they come due for this many seconds "
        "after its occurrence, so each feed is fetched within about a second of its due time; keep it below "
        "the task's cron interval (every minute: 50); 0 fetches only at each occurrence",
    )
    feed_concurrency: PositiveInt = Field(default=100, description="Most feeds hourly-rss-fetch fetches at once")
    crawl_concurrency: PositiveInt = Field(default=16, description="Most article pages crawl-queue fetches at once")
    crawl_lease_seconds: PositiveInt = Field(
        default=900, description="How long a claimed crawl job stays leased before another worker may take it"
    )
    extraction_workers: NonNegativeInt = Field(
        default=0, description="Processes that extract article text (0: one per CPU core)"
    )
    job_max_attempts: PositiveInt = Field(default=5, description="Attempts at a crawl job before it is failed")
    websub_lease_seconds: Annotated[int, Field(ge=300, le=365 * 86400)] = Field(
        default=10 * 86400,
        description="WebSub: the lease asked of a hub, in seconds (the hub may grant another); renewed before "
        "it ends. Push needs MEDIABEAT_PUBLIC_URL",
    )
    websub_verify_attempts: PositiveInt = Field(
        default=5,
        description="WebSub: subscription requests a hub gets to verify our callback before it is given up "
        "as a hub that never verifies",
    )
    websub_retry_seconds: PositiveInt = Field(
        default=300, description="WebSub: seconds to wait for a hub's verification before asking again (doubling)"
    )
    websub_max_body_bytes: PositiveInt = Field(
        default=2 * 1024 * 1024, description="WebSub: largest pushed feed body read; a larger one is ignored"
    )
    opml_max_feeds: PositiveInt = Field(
        default=5000, description="Most feeds one OPML import may list (a larger file is refused with 413)"
    )

    alert_webhook_url: str | None = Field(
        default=None,
        description="POST a JSON alert here when a task starts failing and when it recovers (Slack-compatible)",
    )
    alert_email_to: str = Field(
        default="",
        description="Also mail those alerts to these addresses (comma-separated); needs MEDIABEAT_SMTP_URL",
    )
    alert_email_from: str = Field(default="MediaBeat <mediabeat@localhost>", description="The alerts' From address")
    smtp_url: str | None = Field(
        default=None,
        description="The mail server for alerts: smtp://user:password@host:587 (STARTTLS when offered; a password "
        "is sent only encrypted, or to loopback) or smtps://user:password@host:465",
    )
    public_url: str | None = Field(
        default=None,
        description="Where people reach this service, for links in alerts (e.g. https://beat.example.org); "
        "an https address also marks the session cookie Secure, so sign in through that address. WebSub hubs "
        "call back under it: without it, push is off",
    )

    session_hours: Annotated[float, Field(gt=0, le=24 * 366)] = Field(
        default=12.0, description="How long a dashboard sign-in lasts"
    )
    login_max_failures: PositiveInt = Field(
        default=5, description="Failed sign-ins to one account within the window before it is refused for a while"
    )
    login_max_failures_per_ip: PositiveInt = Field(
        default=50, description="Failed sign-ins from one IP address within the window before it is refused"
    )
    login_window_seconds: PositiveInt = Field(default=900, description="The window that failed sign-ins count in")
    admin_email: str | None = Field(
        default=None, description="The first admin that serve creates when there is none (default admin@localhost)"
    )
    admin_password: str | None = Field(
        default=None, description="That admin's password (default: a random one, printed once)"
    )
    metrics_public: bool = Field(default=False, description="Serve /metrics without credentials")
    max_request_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=12 * 1024 * 1024,
        description="Largest request body the server reads; a larger one gets 413 before it is parsed or "
        "authenticated. Keep it above 10 MiB, the largest OPML file an import takes, plus room for the form",
    )

    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: str = Field(
        default="text",
        description="text, or json: one JSON object a line (time, level, logger, message; run_id and task "
        "on what a run logs)",
    )

    # Simulated time, for multi-process tests and demos: the clock starts at clock_epoch
    # (at real time clock_origin, a Unix timestamp) and runs clock_speed times faster.
    clock_epoch: datetime | None = Field(default=None, description="Simulated time: where the clock starts (testing)")
    clock_speed: Annotated[float, Field(gt=0)] = Field(
        default=1.0, description="Simulated time: how much faster it runs"
    )
    clock_origin: float | None = Field(
        default=None, description="Simulated time: the Unix time at which it is clock_epoch (default: start-up)"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then `*_FILE` secrets, then `.env` in the working directory."""
        dotenv = dotenv_settings.env_vars if isinstance(dotenv_settings, DotEnvSettingsSource) else {}
        environ = {**{key.upper(): value or "" for key, value in dotenv.items()}, **os.environ}
        return init_settings, env_settings, SecretFileSource(settings_cls, environ), dotenv_settings

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("crawler_allowed_networks")
    @classmethod
    def _check_allowed_networks(cls, value: str) -> str:
        for item in _csv(value):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not a network in CIDR form, such as 10.20.0.0/16") from None
        return value

    @property
    def crawler_allowed_network_ranges(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(item, strict=False) for item in _csv(self.crawler_allowed_networks))

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: str | None) -> str | None:
        if value:
            SmtpServer.from_url(value)
        return value

    @property
    def smtp_server(self) -> SmtpServer | None:
        return SmtpServer.from_url(self.smtp_url) if self.smtp_url else None

    @model_validator(mode="after")
    def _mail_needs_a_server(self) -> Settings:
        if self.alert_email_recipients and not self.smtp_url:
            raise ValueError("MEDIABEAT_ALERT_EMAIL_TO needs MEDIABEAT_SMTP_URL, the mail server to send through")
        return self

    @model_validator(mode="after")
    def _feed_bounds(self) -> Settings:
        if self.feed_min_interval > self.feed_max_interval:
            raise ValueError("MEDIABEAT_FEED_MIN_INTERVAL must be at most MEDIABEAT_FEED_MAX_INTERVAL")
        return self

    @property
    def alert_email_recipients(self) -> list[str]:
        return _csv(self.alert_email_to)

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @field_validator("log_format")
    @classmethod
    def _check_log_format(cls, value: str) -> str:
        log_format = value.lower()
        if log_format not in {"text", "json"}:
            raise ValueError("must be text or json")
        return log_format

    @property
    def resolved_node_heartbeat_seconds(self) -> float:
        return self.node_heartbeat_seconds or self.heartbeat_seconds

    @property
    def resolved_node_id(self) -> str:
        import os
        import socket

        return self.node_id or f"{socket.gethostname()}:{os.getpid()}"


class SecretFileSource(PydanticBaseSettingsSource):
    """`MEDIABEAT_X_FILE=/run/secrets/x` sets MEDIABEAT_X to that file's content, stripped (Docker, systemd secrets).

    `environ` holds the process environment over the values of `.env`.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads every field at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self.settings_cls.model_fields:
            for variable in variables_of(name):
                path = self.environ.get(variable + SECRET_FILE_SUFFIX)
                if path is None:
                    continue
                if variable in self.environ:
                    raise SettingsError(f"{variable} and {variable}{SECRET_FILE_SUFFIX} are both set: keep one")
                values[name] = _read_secret(variable + SECRET_FILE_SUFFIX, path)
        return values


def _read_secret(variable: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(f"{variable}: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{variable}: {path} is not UTF-8 text") from None


def variables_of(field: str) -> list[str]:
    """The environment variables that set a field: its aliases, or MEDIABEAT_ and its name."""
    info = Settings.model_fields[field]
    if isinstance(info.validation_alias, AliasChoices):
        return [str(choice) for choice in info.validation_alias.choices]
    return [f"MEDIABEAT_{field.upper()}"]


# MEDIABEAT_ variables that are read, but not as settings: the CLI's debug switch, the worker's metrics options.
OTHER_VARIABLES = frozenset({"MEDIABEAT_DEBUG", "MEDIABEAT_WORKER_METRICS_PORT", "MEDIABEAT_WORKER_METRICS_HOST"})


def unknown_variables() -> list[str]:
    """A sentence for each MEDIABEAT_ variable in the environment or `.env` that sets nothing (a typo,
    or a setting an older version had), with the setting it may have meant: otherwise it is ignored unseen."""
    import difflib

    from dotenv import dotenv_values

    settings = {v for name in Settings.model_fields for v in variables_of(name)}
    known = settings | {v + SECRET_FILE_SUFFIX for v in settings} | OTHER_VARIABLES
    dotenv = dotenv_values(ENV_FILE) if Path(ENV_FILE).is_file() else {}
    given = {name.upper() for name in [*os.environ, *dotenv]}
    sentences = []
    for name in sorted(n for n in given if n.startswith("MEDIABEAT_") and not n.startswith("MEDIABEAT_TEST_")):
        if name in known:
            continue
        close = difflib.get_close_matches(name, sorted(settings), n=1)
        sentences.append(f"{name} is not a setting" + (f" (did you mean {close[0]}?)" if close else ""))
    return sentences


def debug_tracebacks() -> bool:
    """MEDIABEAT_DEBUG: the CLI prints an unexpected error's traceback (read apart, as settings may be broken)."""
    return bool(os.environ.get("MEDIABEAT_DEBUG"))


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def variable_of(field: str) -> str:
    """The environment variable that sets a field (the first, where several do)."""
    return variables_of(field)[0]


def _variable_name(field: str) -> str:
    return variable_of(field) if field in Settings.model_fields else field.upper()  # else keyed by an alias


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; a bad value raises SettingsError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        # What the variable accepts, without echoing the value: a setting may be a secret.
        message = describe({key: value for key, value in first.items() if key != "input"})
        if not first["loc"]:  # a rule over several settings: the message names them
            raise SettingsError(message) from None
        raise SettingsError(f"{_variable_name(str(first['loc'][0]))}: {message}") from None
