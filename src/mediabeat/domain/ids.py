"""Database ids: one bound for every id that reaches a query, from a path, a query string or a form."""

from __future__ import annotations

# The largest value a BIGINT (PostgreSQL) or INTEGER (SQLite) primary key can hold. A larger id names
# no row; passing it to the driver would overflow (OverflowError on SQLite, an error on PostgreSQL).
MAX_ID = 2**63 - 1


def parse_id(text: str | None) -> int | None:
    """`text` as a valid row id, or None when it is not one (empty, not ASCII digits, out of range)."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


def clamp_id(value: int) -> int:
    """An id used as a paging bound: anything above MAX_ID pages from the end."""
    return min(value, MAX_ID)


def valid_id(value: int) -> bool:
    """Whether `value` can name a row: an id outside 1..MAX_ID names none (and would overflow the driver)."""
    return 1 <= value <= MAX_ID
