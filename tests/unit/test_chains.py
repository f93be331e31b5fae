"""The pure chain rules: which chains a run's end starts, and loops found and named."""

from __future__ import annotations

from mediabeat.domain.scheduler import ChainKind, RunStatus
from mediabeat.scheduler.chains import chain_kind_for, describe_loop, find_loop, replace_edges

S, F = ChainKind.SUCCESS, ChainKind.FAILURE
NAMES = {1: "a", 2: "b", 3: "c", 4: "d"}


def test_which_chains_a_run_end_starts() -> None:
    assert chain_kind_for(RunStatus.SUCCEEDED, retried=False) is S
    assert chain_kind_for(RunStatus.FAILED, retried=False) is F
    assert chain_kind_for(RunStatus.TIMED_OUT, retried=False) is F
    assert chain_kind_for(RunStatus.FAILED, retried=True) is None  # the retry's end decides
    for status in (RunStatus.CANCELLED, RunStatus.SKIPPED, RunStatus.ABANDONED):
        assert chain_kind_for(status, retried=False) is None


def test_a_new_edge_that_closes_a_loop_is_found_and_named_in_run_order() -> None:
    edges = [(1, 2, S), (2, 3, F), (3, 4, S)]
    assert find_loop(edges, 1) is None
    closed = replace_edges(edges, 1, {S: [3]})  # a after c
    loop = find_loop(closed, 1)
    assert loop is not None and describe_loop(loop, NAMES) == "a -> b -(on failure)-> c -> a"
    self_loop = find_loop(replace_edges(edges, 4, {F: [4]}), 4)
    assert self_loop is not None and describe_loop(self_loop, NAMES) == "d -(on failure)-> d"


def test_replacing_one_kind_keeps_the_other() -> None:
    edges = [(1, 3, S), (2, 3, F), (1, 4, S)]
    assert replace_edges(edges, 3, {S: [2, 4]}) == [(2, 3, F), (1, 4, S), (2, 3, S), (4, 3, S)]
    assert replace_edges(edges, 3, {F: []}) == [(1, 3, S), (1, 4, S)]
