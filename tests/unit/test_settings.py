"""Settings come from the environment; a bad value names its variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mediabeat.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No MediaBeat variables, and a working directory without a .env, whatever the developer has."""
    for name in [*os.environ]:
        if name.startswith("MEDIABEAT_") or name.startswith("ENABLE_SCHEDULER"):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    settings = load_settings()
    assert settings.database_url == f"sqlite:///{tmp_path}/xdg/mediabeat/mediabeat.db"
    assert settings.enable_scheduler is True
    assert settings.tick_seconds == 60
    assert (settings.job_retention_days, settings.run_retention_days, settings.crawl_batch) == (30, 60, 100)


def test_enable_scheduler_is_the_notes_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_SCHEDULER", "false")
    assert load_settings().enable_scheduler is False


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MEDIABEAT_TICK_SECONDS", "soon", "MEDIABEAT_TICK_SECONDS: must be a number"),
        ("MEDIABEAT_TICK_SECONDS", "0", "MEDIABEAT_TICK_SECONDS: must be greater than 0"),
        ("ENABLE_SCHEDULER", "perhaps", "ENABLE_SCHEDULER: must be true or false"),
        ("MEDIABEAT_DATABASE_URL", "mysql://x", "MEDIABEAT_DATABASE_URL: must start with sqlite:///"),
        ("MEDIABEAT_RUN_RETENTION_DAYS", "-1", "MEDIABEAT_RUN_RETENTION_DAYS: must be greater than 0"),
        ("MEDIABEAT_LOG_FORMAT", "xml", "MEDIABEAT_LOG_FORMAT: must be text or json"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("xdg", [None, "", "relative/dir"])
def test_the_default_database_is_in_the_home_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, xdg: str | None
) -> None:
    """Without a usable XDG_DATA_HOME (unset, empty or relative: the spec says to ignore it), ~/.local/share."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if xdg is None:
        monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_DATA_HOME", xdg)
    assert load_settings().database_url == f"sqlite:///{tmp_path}/home/.local/share/mediabeat/mediabeat.db"


def test_the_default_does_not_depend_on_the_working_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    first = load_settings().database_url
    monkeypatch.chdir(tmp_path)
    assert load_settings().database_url == first


def test_dot_env_in_the_working_directory_is_read_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, _clean_environment: Path
) -> None:
    (_clean_environment / ".env").write_text(
        "MEDIABEAT_TICK_SECONDS=7\nMEDIABEAT_CRAWL_BATCH=9\nENABLE_SCHEDULER=false\nUNRELATED=1\n"
    )
    monkeypatch.setenv("MEDIABEAT_CRAWL_BATCH", "11")
    settings = load_settings()
    assert (settings.tick_seconds, settings.crawl_batch, settings.enable_scheduler) == (7, 11, False)


def test_a_bad_value_in_dot_env_names_the_variable(_clean_environment: Path) -> None:
    (_clean_environment / ".env").write_text("MEDIABEAT_TICK_SECONDS=soon\n")
    with pytest.raises(SettingsError, match=r"^MEDIABEAT_TICK_SECONDS: must be a number"):
        load_settings()


def test_a_file_secret_is_the_files_content_stripped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "password").write_text("  correct horse battery  \n")
    (tmp_path / "smtp").write_text("smtp://mailer:pw@127.0.0.1:2525\n")
    (tmp_path / "db").write_text(f"sqlite:///{tmp_path}/secret.db\n")
    monkeypatch.setenv("MEDIABEAT_ADMIN_PASSWORD_FILE", str(tmp_path / "password"))
    monkeypatch.setenv("MEDIABEAT_SMTP_URL_FILE", str(tmp_path / "smtp"))
    monkeypatch.setenv("MEDIABEAT_DATABASE_URL_FILE", str(tmp_path / "db"))
    settings = load_settings()
    assert settings.admin_password == "correct horse battery"
    assert settings.smtp_server is not None and settings.smtp_server.password == "pw"
    assert settings.database_url == f"sqlite:///{tmp_path}/secret.db"


def test_a_file_secret_named_in_dot_env_is_read(_clean_environment: Path, tmp_path: Path) -> None:
    (tmp_path / "password").write_text("from-a-file\n")
    (_clean_environment / ".env").write_text(f"MEDIABEAT_ADMIN_PASSWORD_FILE={tmp_path / 'password'}\n")
    assert load_settings().admin_password == "from-a-file"


def test_a_missing_secret_file_stops_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MEDIABEAT_ADMIN_PASSWORD_FILE", str(tmp_path / "absent"))
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = f"MEDIABEAT_ADMIN_PASSWORD_FILE: cannot read {tmp_path}/absent: No such file or directory"
    assert str(error.value) == message


def test_a_variable_and_its_file_form_together_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "password").write_text("one")
    monkeypatch.setenv("MEDIABEAT_ADMIN_PASSWORD", "two")
    monkeypatch.setenv("MEDIABEAT_ADMIN_PASSWORD_FILE", str(tmp_path / "password"))
    with pytest.raises(SettingsError, match=r"^MEDIABEAT_ADMIN_PASSWORD and MEDIABEAT_ADMIN_PASSWORD_FILE are both"):
        load_settings()


def test_a_bad_value_from_a_file_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "tick").write_text("often\n")
    monkeypatch.setenv("MEDIABEAT_TICK_SECONDS_FILE", str(tmp_path / "tick"))
    with pytest.raises(SettingsError, match=r"^MEDIABEAT_TICK_SECONDS: must be a number"):
        load_settings()
