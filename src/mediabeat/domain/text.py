"""Text from outside made storable: what neither database can hold is removed at the one boundary, the column types."""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"


def clean_text(value: str) -> str:
    """`value` without NUL characters and with each lone surrogate replaced by U+FFFD.

    PostgreSQL text and jsonb cannot hold U+0000, and a lone surrogate (a JSON "\\ud800", a
    filename decoded with surrogateescape) is not UTF-8, so neither driver can send it. A
    surrogate pair that arrived as two code points is joined into the character it encodes.
    """
    if "\x00" in value:
        value = value.replace("\x00", "")
    if value.isascii():  # the common case, and no surrogate is ASCII
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return value


def clean_json(value: Any) -> Any:
    """A JSON document with clean_text applied to every string in it, keys included."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_json(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value
