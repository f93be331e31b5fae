"""Fixtures for the in-process integration tests: `api`, an app with an admin and a member, on each backend."""

from __future__ import annotations

from tests.integration.api_fixtures import api

__all__ = ["api"]
