"""Full-text search: a query parsed once, scoped to what the reader may see, then ranked or exported."""

from __future__ import annotations

import csv
import enum
import io
import json
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import Any

from mediabeat.db.stores.search import RECENT_IDS, SearchStore
from mediabeat.domain.content import OrgNotFound
from mediabeat.domain.search import MAX_SEARCH_OFFSET, BadQuery, Reader, SearchHit, cache_advice
from mediabeat.search.query import Query, QueryError, parse_query

EXPORT_PAGE = 500  # rows fetched per statement while an export streams
EXPORT_FIELDS = ("id", "org_id", "feed_id", "url", "title", "author", "published_at", "language", "summary")


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


def _cell(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _csv_cell(value: Any) -> Any:
    """A CSV cell; text a spreadsheet would run as a formula (a hostile title "=HYPERLINK(...)") gets a quote."""
    if value is None:
        return ""
    value = _cell(value)
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return value


def export_line(row: dict[str, Any] | None, fmt: ExportFormat) -> str:
    """One line of an export (`row` None is the CSV header; JSON Lines has none)."""
    if fmt is ExportFormat.JSONL:
        assert row is not None
        return json.dumps({k: _cell(row.get(k)) for k in EXPORT_FIELDS}, ensure_ascii=False) + "\n"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_FIELDS if row is None else [_csv_cell(row.get(k)) for k in EXPORT_FIELDS])
    return out.getvalue()


class SearchService:
    """Searches articles; members reach their own organisation only, admins any (or all)."""

    def __init__(self, *, store: SearchStore) -> None:
        self.store = store

    async def upkeep(self) -> tuple[bool, str]:
        """What the nightly cleanup does for search, now: SQLite counts the words ranking leaves out and
        lists the common ones, PostgreSQL moves the newest articles' GIN index up when due, and says when
        its cache is smaller than what searches read most. Whether it could, and what it did."""
        done = await self.store.upkeep()
        if "search_weightless_words" in done:
            return True, (
                f"{done['search_weightless_words']} words held by half of the articles or more counted; "
                f"{done['search_common_words']} words held by a twentieth of the newest articles or more listed"
            )
        advice = cache_advice(done)
        if "search_recent_index" in done:
            return False, ". ".join(filter(None, (str(done["search_recent_index"]), advice)))
        floor = done["search_recent_index_floor"]
        if floor is None:
            due = f"it holds under twice its {RECENT_IDS:,} ids, or another process is rebuilding it"
            said = f"the newest articles' search index was left as it is ({due})"
        else:
            said = (
                f"the newest articles' search index now holds the articles from id {floor} up; "
                "the ids it left have a search index of their own"
            )
        return True, f"{said}. {advice}" if advice else said

    @staticmethod
    def parse(source: str) -> Query:
        """The parsed query, or BadQuery naming the column where it goes wrong."""
        try:
            return parse_query(source)
        except QueryError as exc:
            raise BadQuery(str(exc), exc.column) from None

    async def search(
        self,
        source: str,
        *,
        reader: Reader,
        org_id: int | None = None,
        limit: int = 20,
        offset: int = 0,
        feed_id: int | None = None,
        collapse: bool = False,
    ) -> list[SearchHit]:
        """The best matches, best first; `offset` pages on (at most MAX_SEARCH_OFFSET deep).

        With `collapse`, copies of one story are one hit (its best-ranked copy; `cluster_size` says how many).
        """
        query = self.parse(source)
        scope = scope_of(reader, org_id)
        if offset > MAX_SEARCH_OFFSET:
            raise BadQuery(f"results page at most {MAX_SEARCH_OFFSET} deep; narrow the query or export it", 1)
        return await self.store.search(
            query, org_id=scope, limit=limit, offset=max(0, offset), feed_id=feed_id, collapse=collapse
        )

    async def export(self, source: str, *, reader: Reader, org_id: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every match, newest first, one page of EXPORT_PAGE rows in memory at a time.

        The query is parsed before the first row is asked for (call `parse` first to report a bad
        query before a response starts streaming).
        """
        query = self.parse(source)
        scope = scope_of(reader, org_id)
        before_id: int | None = None
        while True:
            page = await self.store.export_page(query, org_id=scope, before_id=before_id, limit=EXPORT_PAGE)
            for row in page:
                yield row
            if len(page) < EXPORT_PAGE:
                return
            before_id = int(page[-1]["id"])


async def export_lines(rows: AsyncIterator[dict[str, Any]], fmt: ExportFormat) -> AsyncGenerator[str, None]:
    """An export's text, line by line: a CSV header first, then one line per row."""
    if fmt is ExportFormat.CSV:
        yield export_line(None, fmt)
    async for row in rows:
        yield export_line(row, fmt)


def scope_of(reader: Reader, org_id: int | None) -> int | None:
    """The organisation to search: a member's own (naming another is not found), an admin's choice."""
    if reader.is_admin:
        return org_id
    if org_id is not None and org_id != reader.org_id:
        raise OrgNotFound(org_id)
    return reader.org_id if reader.org_id is not None else -1  # a member without an org sees nothing
