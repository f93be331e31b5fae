"""Validation error records in words: what the parameter accepts, and what it got when that helps."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from mediabeat.domain.invalid import describe


class Form(BaseModel):
    limit: int = Field(ge=1, le=500)
    name: str = Field(min_length=2)
    flag: bool = False


def first_error(**values: Any) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        Form.model_validate({"limit": 1, "name": "ok", **values})
    return dict(caught.value.errors()[0])


@pytest.mark.parametrize(
    ("values", "sentence"),
    [
        ({"limit": "abc"}, "must be a whole number (got 'abc')"),
        ({"limit": 0}, "must be at least 1 (got 0)"),
        ({"limit": 501}, "must be at most 500 (got 501)"),
        ({"name": "x"}, "must be at least 2 characters long"),  # the value itself is not echoed
        ({"flag": "perhaps"}, "must be true or false (got 'perhaps')"),
        ({"limit": "x" * 60}, "must be a whole number"),  # too long to echo
    ],
)
def test_pydantic_errors_are_worded(values: dict[str, Any], sentence: str) -> None:
    assert describe(first_error(**values)) == sentence


def test_a_choice_a_missing_field_and_an_own_message() -> None:
    choice = {"type": "value_error", "msg": "Value error, 'xml' is not one of 'csv', 'jsonl'.", "input": "xml"}
    assert describe(choice) == "must be one of csv, jsonl (got 'xml')"
    assert describe({"type": "missing", "msg": "Field required", "input": {}}) == "is required"
    own = {"type": "value_error", "msg": "Value error, at least 12 characters", "input": "short"}
    assert describe(own) == "at least 12 characters"
    unknown = {"type": "some_new_type", "msg": "Input should be a valid colour", "input": "blurple"}
    assert describe(unknown) == "must be a valid colour (got 'blurple')"
