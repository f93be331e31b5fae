"""The list pages' filters: a blank choice means "all"; any other value must be one the filter knows.

The filter forms send `?status=` for "all", so a blank value is no filter. Anything else is validated
by the same enum as the API's, and a value that is not one of them is a 422 page saying which values
are allowed (web/errors.py words it through domain/invalid.py, as for the API), never a page that
silently shows everything.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query
from pydantic import BeforeValidator

from mediabeat.domain.content import JobStatus
from mediabeat.domain.scheduler import RunStatus, Trigger


def blank_is_all(value: object) -> object:
    return None if value == "" else value


NoFilter = BeforeValidator(blank_is_all)
FeedState = Annotated[Literal["active", "disabled", "failing"] | None, NoFilter, Query()]
JobStatusFilter = Annotated[JobStatus | None, NoFilter, Query()]
RunStatusFilter = Annotated[RunStatus | None, NoFilter, Query()]
TriggerFilter = Annotated[Trigger | None, NoFilter, Query()]
CopiesFilter = Annotated[Literal["0", "1"] | None, NoFilter, Query()]
