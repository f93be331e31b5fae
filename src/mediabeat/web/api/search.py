"""GET /api/v1/articles/export: every match of a search as CSV or JSON Lines, streamed page by page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from mediabeat.domain.content import OrgNotFound
from mediabeat.domain.ids import MAX_ID
from mediabeat.search.query import MAX_QUERY_LENGTH
from mediabeat.services.search import ExportFormat, export_lines
from mediabeat.web.deps import ContentReader, can_access_org, content_services, reader_of
from mediabeat.web.errors import error_responses

router = APIRouter(prefix="/api/v1")
MEDIA_TYPES = {ExportFormat.CSV: "text/csv; charset=utf-8", ExportFormat.JSONL: "application/x-ndjson"}


@router.get(
    "/articles/export",
    summary="Every article matching a search, newest first, as CSV or JSON Lines (streamed)",
    description=(
        "The query language of docs/search.md. Rows: id, org_id, feed_id, url, title, author, published_at, "
        "language, summary. The body streams as it is read from the database, 500 rows at a time, so an export "
        "of any size holds one page in memory. In CSV a cell that a spreadsheet would run as a formula starts "
        "with a quote. A bad query is a 422 naming the column, before anything is sent."
    ),
    tags=["articles"],
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {m: {"schema": {"type": "string"}} for m in MEDIA_TYPES.values()},
            "description": "CSV with a header row, or one JSON object a line",
        },
        **error_responses(401, 404, 422),
    },
)
async def export_articles(
    request: Request,
    principal: ContentReader,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_LENGTH, description="The search query")],
    format: Annotated[ExportFormat, Query(description="csv or jsonl")] = ExportFormat.CSV,
    org_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="The organisation (members: only their own; default: theirs)")
    ] = None,
) -> StreamingResponse:
    search = content_services(request).search
    search.parse(q)  # a bad query is a 422 before the response starts
    if org_id is not None and not can_access_org(principal, org_id):
        raise OrgNotFound(org_id)
    rows = search.export(q, reader=reader_of(principal), org_id=org_id)
    filename = f"mediabeat-search.{format.value}"
    return StreamingResponse(
        _encoded(export_lines(rows, format)),
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _encoded(lines: AsyncIterator[str]) -> AsyncIterator[bytes]:
    async for line in lines:
        yield line.encode("utf-8")
