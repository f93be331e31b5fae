"""Full-text search: a query parsed once, scoped to what the reader may see, then ranked or exported."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from mediabeat.db.stores.search import SearchStore
from mediabeat.domain.content import OrgNotFound
from mediabeat.domain.search import MAX_SEARCH_OFFSET, BadQuery, Reader, SearchHit
from mediabeat.search.query import Query, QueryError, parse_query

EXPORT_PAGE = 500  # rows fetched per statement while an export streams


class SearchService:
    """Searches articles; members reach their own organisation only, admins any (or all)."""

    def __init__(self, *, store: SearchStore) -> None:
        self.store = store

    @staticmethod
    def parse(source: str) -> Query:
        """The parsed query, or BadQuery naming the column where it goes wrong."""
        try:
            return parse_query(source)
        except QueryError as exc:
            raise BadQuery(str(exc), exc.column) from None

    async def search(
        self, source: str, *, reader: Reader, org_id: int | None = None, limit: int = 20, offset: int = 0
    ) -> list[SearchHit]:
        """The best matches, best first; `offset` pages on (at most MAX_SEARCH_OFFSET deep)."""
        query = self.parse(source)
        scope = scope_of(reader, org_id)
        if offset > MAX_SEARCH_OFFSET:
            raise BadQuery(f"results page at most {MAX_SEARCH_OFFSET} deep; narrow the query or export it", 1)
        return await self.store.search(query, org_id=scope, limit=limit, offset=max(0, offset))

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


def scope_of(reader: Reader, org_id: int | None) -> int | None:
    """The organisation to search: a member's own (naming another is not found), an admin's choice."""
    if reader.is_admin:
        return org_id
    if org_id is not None and org_id != reader.org_id:
        raise OrgNotFound(org_id)
    return reader.org_id if reader.org_id is not None else -1  # a member without an org sees nothing
