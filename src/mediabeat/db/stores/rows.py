"""Rows to domain records: the one place a store turns a SQLAlchemy row into a record."""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa

R = TypeVar("R")


def record_of(cls: type[R], row: sa.Row[Any]) -> R:
    """`row` as a `cls` record, field by field (the row may have more columns than the record)."""
    mapping = row._mapping  # built on each access: read it once, not once per field
    return cls(**{name: mapping[name] for name in cls.__slots__})  # type: ignore[attr-defined]
