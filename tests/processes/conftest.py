"""Fixtures for the tests that start `mediabeat` processes: the environment a command runs in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def cli_env(database_url: str) -> dict[str, str]:
    """A command's environment on a fresh, migrated database of the current backend."""
    return {**os.environ, "MEDIABEAT_DATABASE_URL": database_url, "COLUMNS": "200"}


@pytest.fixture
def fresh_env(tmp_path: Path) -> dict[str, str]:
    """A command's environment on a SQLite database that does not exist yet."""
    return {**os.environ, "MEDIABEAT_DATABASE_URL": f"sqlite:///{tmp_path}/fresh/mb.db", "COLUMNS": "200"}
