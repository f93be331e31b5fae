"""The `shard` parameter of hourly-rss-fetch: which part of the feeds a task fetches."""

from __future__ import annotations

import pytest

from mediabeat.domain.content import FeedShard


def test_a_shard_is_i_of_n() -> None:
    assert FeedShard.parse(None) is None
    assert FeedShard.parse("0/4") == FeedShard(0, 4)
    assert FeedShard.parse(" 3 / 4 ") == FeedShard(3, 4)
    assert FeedShard.parse("0/1") == FeedShard(0, 1)


@pytest.mark.parametrize("value", ["4/4", "-1/4", "1/0", "1", "a/b", "", 3, ["0", "4"], "1/2/3"])
def test_anything_else_is_refused_with_the_expected_form(value: object) -> None:
    with pytest.raises(ValueError, match=r'the "shard" parameter must be "I/N" with 0 <= I < N, such as "0/4"'):
        FeedShard.parse(value)
