"""A query parameter or field the API cannot use is named with what it accepts, not in the validator's words."""

from __future__ import annotations

import pytest

from tests.integration.api_fixtures import ApiEnv, assert_error

RUNS = "/api/v1/scheduler/runs"


@pytest.mark.parametrize(
    ("query", "field", "message", "kind"),
    [
        ("limit=abc", "limit", "must be a whole number (got 'abc')", "int_parsing"),
        ("limit=0", "limit", "must be at least 1 (got '0')", "greater_than_equal"),
        ("limit=501", "limit", "must be at most 500 (got '501')", "less_than_equal"),
        ("status=bogus", "status", "must be one of running, succeeded, failed, timed_out, skipped, abandoned", "enum"),
        ("since=yesterday", "since", "must be a date and time in ISO 8601", "datetime_from_date_parsing"),
    ],
)
async def test_a_bad_query_parameter_says_what_it_accepts(
    api: ApiEnv, query: str, field: str, message: str, kind: str
) -> None:
    async with api.admin() as client:
        response = await client.get(f"{RUNS}?{query}")
    error = assert_error(response, 422, "invalid")
    assert error["message"].startswith(f"invalid input: {field}: {message}"), error
    [detail] = error["details"]
    assert detail["field"] == field and detail["message"].startswith(message) and detail["type"] == kind, detail
    assert "Input should" not in response.text and "Value error" not in response.text
