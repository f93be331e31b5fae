"""Chains between tasks, as pure decisions: which chains a run's end starts, and whether edges make a loop.

A task may run after several tasks (success edges, a fan-in) and after others fail (failure
edges). The fan-in's cycle: the task runs once every one of its success upstreams has
succeeded at least once since the task last ran for this reason (the way Airflow starts a DAG
scheduled on several datasets). A failure edge starts its task once per failed run of the
upstream, when that run's retries are used up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mediabeat.domain.scheduler import ChainKind, ChainLink, RunStatus, TaskChains

__all__ = ["Edge", "chain_kind_for", "chains_by_task", "describe_loop", "find_loop", "replace_edges"]

# (upstream_id, downstream_id, kind)
Edge = tuple[int, int, ChainKind]

# Run ends that start the failure chains of their task (a person's cancel or a skip does not).
FAILED_ENDS = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT})


def chain_kind_for(status: RunStatus, *, retried: bool) -> ChainKind | None:
    """Which chains a run that ended so starts: success edges, failure edges (no retry follows), or none."""
    if status is RunStatus.SUCCEEDED:
        return ChainKind.SUCCESS
    if status in FAILED_ENDS and not retried:
        return ChainKind.FAILURE
    return None


def replace_edges(edges: Iterable[Edge], downstream_id: int, new: Mapping[ChainKind, Iterable[int]]) -> list[Edge]:
    """All edges once the downstream's edges of each kind in `new` are replaced by edges from those upstreams."""
    kept = [e for e in edges if not (e[1] == downstream_id and e[2] in new)]
    return kept + [(up, downstream_id, kind) for kind, ups in new.items() for up in ups]


def find_loop(edges: Iterable[Edge], start: int) -> list[tuple[int, ChainKind]] | None:
    """A loop through `start` in the chain graph, as (task, kind of the edge into the next) steps; None if none.

    The graph had no loop before `start`'s edges changed, so a new loop passes through `start`:
    a walk from it, following the tasks that run after each task, finds the way back.
    """
    after: dict[int, list[tuple[int, ChainKind]]] = {}
    for up, down, kind in edges:
        after.setdefault(up, []).append((down, kind))
    for targets in after.values():
        targets.sort()
    came_from: dict[int, tuple[int, ChainKind]] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        task = frontier.pop(0)
        for down, kind in after.get(task, []):
            if down == start:
                return [*_path(came_from, start, task), (task, kind)]
            if down not in seen:
                seen.add(down)
                came_from[down] = (task, kind)
                frontier.append(down)
    return None


def _path(came_from: Mapping[int, tuple[int, ChainKind]], start: int, end: int) -> list[tuple[int, ChainKind]]:
    steps: list[tuple[int, ChainKind]] = []
    task = end
    while task != start:
        previous, kind = came_from[task]
        steps.append((previous, kind))
        task = previous
    return list(reversed(steps))


def describe_loop(loop: list[tuple[int, ChainKind]], names: Mapping[int, str]) -> str:
    """The loop in words, in run order, back to where it began: "a -> b -(on failure)-> c -> a"."""
    text = names[loop[0][0]]
    for index, (_, kind) in enumerate(loop):
        following = loop[(index + 1) % len(loop)][0]
        arrow = " -> " if kind is ChainKind.SUCCESS else " -(on failure)-> "
        text += arrow + names[following]
    return text


def chains_by_task(links: Iterable[ChainLink]) -> dict[int, TaskChains]:
    """Each task's upstream and downstream links (a task without any has no entry)."""
    upstream: dict[int, list[ChainLink]] = {}
    downstream: dict[int, list[ChainLink]] = {}
    for link in links:
        upstream.setdefault(link.downstream_id, []).append(link)
        downstream.setdefault(link.upstream_id, []).append(link)
    return {
        task_id: TaskChains(
            upstream=tuple(sorted(upstream.get(task_id, []), key=lambda k: (k.kind, k.upstream))),
            downstream=tuple(sorted(downstream.get(task_id, []), key=lambda k: (k.kind, k.downstream))),
        )
        for task_id in upstream.keys() | downstream.keys()
    }
