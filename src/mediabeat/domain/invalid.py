"""A value that failed validation, said in words: what the parameter accepts, and what it got.

The CLI (an option or argument) and the HTTP API (a query parameter or a body field) both validate
their input with pydantic, whose messages ("Input should be a valid integer, unable to parse string
as an integer", "Value error, 'xml' is not one of …") speak of the validator rather than the
parameter. `describe` turns one of its error records (a plain mapping: `type`, `msg`, `ctx`, `input`)
into the part of a sentence that follows the parameter's name: "must be a whole number (got 'abc')".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Error types whose input is worth echoing back: a short value the person typed.
_KINDS = {
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "decimal_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "datetime_parsing": "must be a date and time in ISO 8601, such as 2026-01-31T09:00:00Z",
    "datetime_type": "must be a date and time in ISO 8601, such as 2026-01-31T09:00:00Z",
    "datetime_from_date_parsing": "must be a date and time in ISO 8601, such as 2026-01-31T09:00:00Z",
    "date_parsing": "must be a date such as 2026-01-31",
    "date_from_datetime_parsing": "must be a date such as 2026-01-31",
    "uuid_parsing": "must be a UUID",
    "url_parsing": "must be a URL",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least {}"),
    "greater_than": ("gt", "must be greater than {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "less_than": ("lt", "must be less than {}"),
}
# Typer's choice check raises ValueError("'xml' is not one of 'csv', 'jsonl'.").
_NOT_ONE_OF = re.compile(r"^(?P<got>.+) is not one of (?P<choices>.+?)\.?$")
_QUOTED = re.compile(r"'([^']*)'")
_ECHO_LIMIT = 40


def describe(error: Mapping[str, Any]) -> str:
    """What the parameter accepts, and the value it got when that is short and helps: one clause."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind in _KINDS:
        return _with_input(_KINDS[kind], error)
    if kind in _BOUNDS and _BOUNDS[kind][0] in ctx:
        key, template = _BOUNDS[kind]
        return _with_input(template.format(ctx[key]), error)
    if kind in {"enum", "literal_error"} and "expected" in ctx:
        return _with_input(f"must be one of {_choices(str(ctx['expected']))}", error)
    if kind in {"string_too_short", "string_too_long", "too_short", "too_long"}:
        return _length(kind, ctx) or _plain(error)
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a field this accepts"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return "must be a JSON object"
    if kind == "list_type":
        return "must be a list"
    return _plain(error)


def _plain(error: Mapping[str, Any]) -> str:
    """A message of the project's own validators, or pydantic's with its validator wording removed."""
    message = str(error.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    choice = _NOT_ONE_OF.match(message)
    if choice:
        return f"must be one of {_choices(choice['choices'])} (got {choice['got']})"
    if message.startswith("Input should be "):
        return _with_input("must be " + message.removeprefix("Input should be "), error)
    return message


def _choices(text: str) -> str:
    """Quoted choices, such as "'a', 'b' or 'c'", as "a, b, c"."""
    quoted = _QUOTED.findall(text)
    return ", ".join(quoted) if quoted else text


def _length(kind: str, ctx: Mapping[str, Any]) -> str | None:
    limit = ctx.get("min_length" if kind.endswith("short") else "max_length")
    if limit is None:
        return None
    bound = "at least" if kind.endswith("short") else "at most"
    if kind.startswith("string"):
        return f"must be {bound} {limit} character{'s' if limit != 1 else ''} long"
    return f"must have {bound} {limit} item{'s' if limit != 1 else ''}"


def _with_input(message: str, error: Mapping[str, Any]) -> str:
    value = error.get("input")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return message
    shown = repr(value)
    return f"{message} (got {shown})" if len(shown) <= _ECHO_LIMIT else message
