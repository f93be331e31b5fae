"""Settings come from the environment; a bad value names its variable."""

from __future__ import annotations

import pytest

from mediabeat.settings import SettingsError, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEDIABEAT_DATABASE_URL", "ENABLE_SCHEDULER", "MEDIABEAT_TICK_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.database_url == "sqlite:///data/mediabeat.db"
    assert settings.enable_scheduler is True
    assert settings.tick_seconds == 60
    assert (settings.job_retention_days, settings.run_retention_days, settings.crawl_batch) == (30, 60, 100)


def test_enable_scheduler_is_the_notes_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_SCHEDULER", "false")
    assert load_settings().enable_scheduler is False


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MEDIABEAT_TICK_SECONDS", "soon", "MEDIABEAT_TICK_SECONDS: Input should be a valid number"),
        ("MEDIABEAT_TICK_SECONDS", "0", "MEDIABEAT_TICK_SECONDS: Input should be greater than 0"),
        ("ENABLE_SCHEDULER", "perhaps", "ENABLE_SCHEDULER: Input should be a valid boolean"),
        ("MEDIABEAT_DATABASE_URL", "mysql://x", "MEDIABEAT_DATABASE_URL: must start with sqlite:///"),
        ("MEDIABEAT_RUN_RETENTION_DAYS", "-1", "MEDIABEAT_RUN_RETENTION_DAYS: Input should be greater than 0"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)
