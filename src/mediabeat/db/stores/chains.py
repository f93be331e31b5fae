"""Queries for chains between tasks: the edges, and the exactly-once start of a chained run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from mediabeat.db.engine import Database
from mediabeat.db.stores.scheduler import ERROR_LIMIT, PAUSED, claim_run
from mediabeat.db.tables import scheduler_task_edges as edges_t
from mediabeat.db.tables import scheduler_task_joins as joins_t
from mediabeat.db.tables import scheduler_task_runs as runs_t
from mediabeat.db.tables import scheduler_tasks as tasks_t
from mediabeat.domain.scheduler import ChainKind, ChainLink, OverlapForbidden, RunStatus, TaskRecord, Trigger


@dataclass(frozen=True, slots=True)
class ChainedRun:
    """A run a chain started: running, or recorded `skipped` because the task was running and forbids overlap."""

    run_id: int
    status: RunStatus
    reason: str | None = None


class ChainStore:
    """Chain edges and their start, on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def links(self, task_id: int | None = None) -> list[ChainLink]:
        """Every chain edge with both tasks' names, or only those into or out of `task_id`."""
        query = _links_query()
        if task_id is not None:
            query = query.where(sa.or_(edges_t.c.upstream_id == task_id, edges_t.c.downstream_id == task_id))
        async with self.db.read() as conn:
            return _links(await conn.execute(query))

    async def replace(
        self,
        downstream_id: int,
        upstreams: Mapping[ChainKind, Sequence[int]],
        check: Callable[[list[ChainLink]], None],
    ) -> None:
        """Make the downstream's edges of each kind in `upstreams` exactly those; `check` may refuse first.

        `check` sees every edge as it is inside the writing transaction (no other change to chains
        can slip between the check and the write: SQLite writes one at a time, and on PostgreSQL
        the edge table is locked against other writers). Kept edges keep their cycle state.
        """
        async with self.db.write() as conn:
            if self.db.is_postgres:
                await conn.execute(sa.text("LOCK TABLE scheduler_task_edges IN SHARE ROW EXCLUSIVE MODE"))
            check(await self._all_links(conn))
            for kind, ids in upstreams.items():  # deletions first: an upstream may change kind
                mine = (edges_t.c.downstream_id == downstream_id, edges_t.c.kind == kind)
                await conn.execute(edges_t.delete().where(*mine, edges_t.c.upstream_id.not_in(list(ids))))
            kept = sa.select(edges_t.c.upstream_id).where(edges_t.c.downstream_id == downstream_id)
            existing = set((await conn.execute(kept)).scalars())
            rows = [
                {"downstream_id": downstream_id, "upstream_id": up, "kind": kind}
                for kind, ids in upstreams.items()
                for up in ids
                if up not in existing
            ]
            if rows:
                await conn.execute(edges_t.insert(), rows)
            if upstreams.get(ChainKind.SUCCESS):
                join = self._insert(joins_t).values(task_id=downstream_id, cycle=0)
                await conn.execute(join.on_conflict_do_nothing(index_elements=["task_id"]))

    async def _all_links(self, conn: AsyncConnection) -> list[ChainLink]:
        return _links(await conn.execute(_links_query()))

    def _insert(self, table: sa.Table) -> Any:
        return (postgresql.insert if self.db.is_postgres else sqlite.insert)(table)

    async def count_success(self, upstream_id: int, run_id: int) -> list[int]:
        """Count run `run_id` of the upstream in the current cycle of each task that runs after it succeeds.

        Committed on its own, before any start is tried: of two upstreams that succeed at once on two
        nodes, the second to commit here then sees both (see start()). Returns those tasks' ids.
        """
        current = sa.select(joins_t.c.cycle).where(joins_t.c.task_id == edges_t.c.downstream_id).scalar_subquery()
        async with self.db.write() as conn:
            rows = await conn.execute(
                edges_t.update()
                .where(edges_t.c.upstream_id == upstream_id, edges_t.c.kind == ChainKind.SUCCESS)
                .values(cycle=current, last_run_id=run_id)
                .returning(edges_t.c.downstream_id)
            )
            return sorted(rows.scalars())

    async def failure_dependents(self, upstream_id: int) -> list[int]:
        """The ids of the tasks that run after the upstream fails."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(edges_t.c.downstream_id).where(
                    edges_t.c.upstream_id == upstream_id, edges_t.c.kind == ChainKind.FAILURE
                )
            )
            return sorted(rows.scalars())

    async def start(
        self,
        task: TaskRecord,
        *,
        kind: ChainKind,
        upstream_id: int,
        upstream_run_id: int,
        now: datetime,
        node_id: str | None,
        triggered_by: str,
        scheduled_for: datetime,
    ) -> ChainedRun | None:
        """Start a chained run of `task` if its chain is due; None if not (or another node started it).

        One UPDATE decides, so that the start happens exactly once: for a fan-in (success edges)
        it moves the task's cycle on only while every success edge carries the current cycle (on
        PostgreSQL under the lock of the task's cycle row, taken first); for
        a failure edge it records the failed run on the edge only if no later one is there. The
        same statement reads the pause switch and the task's `enabled`. The run is inserted in the
        same transaction; a task that is running and forbids overlap gets a `skipped` run instead.
        """
        decide = (
            _fan_in(task.id, now) if kind is ChainKind.SUCCESS else _on_failure(task.id, upstream_id, upstream_run_id)
        )
        async with self.db.write() as conn:
            if kind is ChainKind.SUCCESS and self.db.is_postgres:
                # Wait for a node starting the same fan-in: the UPDATE's snapshot then sees its new cycle.
                # (The UPDATE alone cannot tell: PostgreSQL re-checks a locked row against the edges
                # it read before the wait.)
                lock = sa.select(joins_t.c.task_id).where(joins_t.c.task_id == task.id).with_for_update()
                await conn.execute(lock)
            if (await conn.execute(decide)).first() is None:
                return None
            try:
                run_id = await claim_run(
                    conn,
                    task,
                    now=now,
                    node_id=node_id,
                    triggered_by=triggered_by,
                    trigger=Trigger.DEPENDENCY,
                    scheduled_for=scheduled_for,
                    lock=self.db.is_postgres,
                )
            except OverlapForbidden as exc:
                reason = f"skipped: run {exc.running_run_id} of this task is still running (overlap policy forbid)"
                return ChainedRun(
                    await _skipped_run(conn, task, now, triggered_by, scheduled_for, reason), RunStatus.SKIPPED, reason
                )
            return ChainedRun(run_id, RunStatus.RUNNING)


def _links_query() -> sa.Select[Any]:
    upstream, downstream = tasks_t.alias("upstream"), tasks_t.alias("downstream")
    return (
        sa.select(
            edges_t.c.upstream_id,
            upstream.c.name.label("upstream"),
            edges_t.c.downstream_id,
            downstream.c.name.label("downstream"),
            edges_t.c.kind,
        )
        .join_from(edges_t, upstream, upstream.c.id == edges_t.c.upstream_id)
        .join(downstream, downstream.c.id == edges_t.c.downstream_id)
        .order_by(downstream.c.name, upstream.c.name)
    )


def _links(rows: sa.Result[Any]) -> list[ChainLink]:
    return [
        ChainLink(int(r.upstream_id), r.upstream, int(r.downstream_id), r.downstream, ChainKind(r.kind)) for r in rows
    ]


def _startable(task_id: Any) -> list[sa.ColumnElement[bool]]:
    """The task is enabled and the scheduler is not paused."""
    enabled = sa.exists().where(tasks_t.c.id == task_id, tasks_t.c.enabled == sa.true())
    return [enabled, ~PAUSED]


def _fan_in(task_id: int, now: datetime) -> sa.Executable:
    """Move the task's cycle on if every success edge into it carries the current cycle."""
    behind = sa.exists().where(
        edges_t.c.downstream_id == joins_t.c.task_id,
        edges_t.c.kind == ChainKind.SUCCESS,
        sa.or_(edges_t.c.cycle.is_(None), edges_t.c.cycle != joins_t.c.cycle),
    )
    return (
        joins_t.update()
        .where(joins_t.c.task_id == task_id, ~behind, *_startable(joins_t.c.task_id))
        .values(cycle=joins_t.c.cycle + 1, fired_at=now)
        .returning(joins_t.c.cycle)
    )


def _on_failure(task_id: int, upstream_id: int, run_id: int) -> sa.Executable:
    """Record the failed run on the failure edge, unless that run (or a later one) is there already."""
    return (
        edges_t.update()
        .where(
            edges_t.c.downstream_id == task_id,
            edges_t.c.upstream_id == upstream_id,
            edges_t.c.kind == ChainKind.FAILURE,
            sa.or_(edges_t.c.last_run_id.is_(None), edges_t.c.last_run_id < run_id),
            *_startable(edges_t.c.downstream_id),
        )
        .values(last_run_id=run_id)
        .returning(edges_t.c.downstream_id)
    )


async def _skipped_run(
    conn: AsyncConnection, task: TaskRecord, now: datetime, triggered_by: str, scheduled_for: datetime, reason: str
) -> int:
    run_id = await conn.execute(
        runs_t.insert()
        .values(
            task_id=task.id,
            trigger=Trigger.DEPENDENCY,
            scheduled_for=scheduled_for,
            started_at=now,
            finished_at=now,
            duration_ms=0,
            status=RunStatus.SKIPPED,
            triggered_by=triggered_by,
            error=reason[:ERROR_LIMIT],
        )
        .returning(runs_t.c.id)
    )
    return int(run_id.scalar_one())
