"""A handler's result becomes AllWorkFailed only when it tried some work and every unit failed."""

from __future__ import annotations

import pytest

from mediabeat.domain.scheduler import AllWorkFailed
from mediabeat.tasks.base import unless_all_failed


def test_some_success_or_no_work_keeps_the_result() -> None:
    assert unless_all_failed({"feeds": 3}, attempted=3, failed=2, unit="feeds", first_error="x") == {"feeds": 3}
    assert unless_all_failed({"feeds": 0}, attempted=0, failed=0, unit="feeds", first_error=None) == {"feeds": 0}


def test_every_unit_failed_raises_with_the_counts_and_the_first_error() -> None:
    with pytest.raises(AllWorkFailed) as caught:
        unless_all_failed({"feeds": 12, "failed": 12}, attempted=12, failed=12, unit="feeds", first_error="HTTP 500")
    assert caught.value.message == "all 12 feeds failed (first: HTTP 500)"
    assert caught.value.result == {"feeds": 12, "failed": 12}


def test_a_single_unit_that_failed_is_said_in_the_singular() -> None:
    with pytest.raises(AllWorkFailed) as caught:
        unless_all_failed({"feeds": 1, "failed": 1}, attempted=1, failed=1, unit="feeds", first_error="HTTP 500")
    assert caught.value.message == "the one feed tried failed: HTTP 500"
