"""Queries for scheduled tasks and their runs, including the atomic claim of due occurrences."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from mediabeat.db.engine import Database
from mediabeat.db.tables import scheduler_pause as pause_t
from mediabeat.db.tables import scheduler_task_runs as runs_t
from mediabeat.db.tables import scheduler_tasks as tasks_t
from mediabeat.domain.scheduler import (
    ClaimedRuns,
    ClaimOutcome,
    MisfirePolicy,
    OverlapForbidden,
    OverlapPolicy,
    RunFilter,
    RunPoint,
    RunRecord,
    RunStatus,
    SchedulerPause,
    TaskRecord,
    Trigger,
)
from mediabeat.schedule import DuePlan, overlap_allows

RUN_COLUMNS = [*runs_t.c, tasks_t.c.name.label("task")]
# Listings leave out the traceback (up to TRACEBACK_LIMIT characters a row); one run's detail has it.
LIST_COLUMNS = [
    sa.null().label(column.name) if column.name in ("traceback", "log") else column for column in RUN_COLUMNS
]
TRACEBACK_LIMIT = 8_000
ERROR_LIMIT = 2_000


class SchedulerStore:
    """Tasks, runs and the claim of due occurrences, on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self, table: sa.Table) -> Any:
        return (postgresql.insert if self.db.is_postgres else sqlite.insert)(table)

    # -- tasks ---------------------------------------------------------------------

    async def list_tasks(self) -> list[TaskRecord]:
        async with self.db.read() as conn:
            rows = await conn.execute(sa.select(tasks_t).order_by(tasks_t.c.name))
            return [task_from_row(r) for r in rows]

    async def get_task(self, task_id: int) -> TaskRecord | None:
        return await self._one_task(tasks_t.c.id == task_id)

    async def get_task_by_name(self, name: str) -> TaskRecord | None:
        return await self._one_task(tasks_t.c.name == name)

    async def _one_task(self, where: sa.ColumnElement[bool]) -> TaskRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(tasks_t).where(where))).first()
            return task_from_row(row) if row else None

    async def create_task(self, values: dict[str, Any], now: datetime) -> TaskRecord:
        async with self.db.write() as conn:
            row = (
                await conn.execute(tasks_t.insert().values(**values, created_at=now, updated_at=now).returning(tasks_t))
            ).one()
            return task_from_row(row)

    async def update_task(self, task_id: int, values: dict[str, Any], now: datetime) -> TaskRecord | None:
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    tasks_t.update().where(tasks_t.c.id == task_id).values(**values, updated_at=now).returning(tasks_t)
                )
            ).first()
            return task_from_row(row) if row else None

    async def delete_task(self, task_id: int) -> bool:
        """Delete a task and its run history; False if it did not exist."""
        async with self.db.write() as conn:
            await conn.execute(runs_t.delete().where(runs_t.c.task_id == task_id))
            result = await conn.execute(tasks_t.delete().where(tasks_t.c.id == task_id))
            return bool(result.rowcount)

    async def get_tasks(self, task_ids: Iterable[int]) -> list[TaskRecord]:
        """These tasks (those that exist), by name."""
        ids = sorted(set(task_ids))
        if not ids:
            return []
        async with self.db.read() as conn:
            rows = await conn.execute(sa.select(tasks_t).where(tasks_t.c.id.in_(ids)).order_by(tasks_t.c.name))
            return [task_from_row(r) for r in rows]

    async def tasks_without_next_run(self) -> list[TaskRecord]:
        async with self.db.read() as conn:
            rows = await conn.execute(sa.select(tasks_t).where(tasks_t.c.next_run_at.is_(None)))
            return [task_from_row(r) for r in rows]

    async def set_next_run_if_unset(self, task_id: int, next_run_at: datetime | None) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                tasks_t.update()
                .where(tasks_t.c.id == task_id, tasks_t.c.next_run_at.is_(None))
                .values(next_run_at=next_run_at)
            )

    async def earliest_next_run(self) -> datetime | None:
        """The soonest next_run_at (indexed) or pending retry of any enabled task."""
        async with self.db.read() as conn:
            query = sa.select(sa.func.min(tasks_t.c.next_run_at)).where(tasks_t.c.enabled == sa.true())
            value = (await conn.execute(query)).scalar()
            retry = sa.select(sa.func.min(tasks_t.c.retry_at)).where(
                tasks_t.c.enabled == sa.true(), tasks_t.c.retry_at.is_not(None)
            )
            retry_value = (await conn.execute(retry)).scalar()
        found = [_as_utc(v) for v in (value, retry_value) if v is not None]
        return min(found) if found else None

    # -- retries -------------------------------------------------------------------------

    async def schedule_retry(self, task_id: int, *, run_id: int, attempt: int, at: datetime) -> None:
        """Remember that run `run_id` of the task is retried at `at`, as attempt `attempt`."""
        async with self.db.write() as conn:
            await conn.execute(
                tasks_t.update()
                .where(tasks_t.c.id == task_id)
                .values(retry_at=at, retry_run_id=run_id, retry_attempt=attempt)
            )

    async def claim_retries(self, *, now: datetime, node_id: str, limit: int) -> list[ClaimedRuns]:
        """Start the retries that are due (not while paused): one run each, trigger retry; one transaction.

        A retry whose task has a run in flight and forbids overlap is dropped: that run is the next attempt.
        """
        claimed: list[ClaimedRuns] = []
        async with self.db.write() as conn:
            query = (
                sa.select(tasks_t)
                .where(tasks_t.c.enabled == sa.true(), tasks_t.c.retry_at <= now, ~PAUSED)
                .order_by(tasks_t.c.priority.desc(), tasks_t.c.retry_at, tasks_t.c.id)
                .limit(limit)
            )
            if self.db.is_postgres:
                query = query.with_for_update(skip_locked=True)
            due = [task_from_row(r) for r in await conn.execute(query)]
            if not due:
                return claimed
            running = await _running_run_ids(conn, [t.id for t in due])
            clear = tasks_t.update().where(tasks_t.c.id.in_([t.id for t in due]))
            await conn.execute(clear.values(retry_at=None, retry_run_id=None, retry_attempt=0))
            for task in due:
                if task.id in running and not overlap_allows(task.overlap_policy, running=1):
                    continue
                claimed.append(await _insert_retry(conn, task, now=now, node_id=node_id))
        return claimed

    # -- claims ----------------------------------------------------------------------

    async def claim_due(
        self,
        *,
        now: datetime,
        node_id: str,
        limit: int,
        plan: Callable[[TaskRecord], DuePlan],
        start_now: int | None = None,
    ) -> ClaimOutcome:
        """Claim the due occurrences of up to `limit` tasks in one transaction.

        The first `start_now` tasks (in DUE_ORDER; None: all) get `running` rows and start at once; the
        others get `queued` rows, for this node's backlog (it starts them as slots free).

        Nothing is claimed while the scheduler is paused: the pause row is read in the same statement.
        The unique (task_id, scheduled_for) index decides which node runs an occurrence:
        an INSERT that conflicts means another node won it. On PostgreSQL the due task
        rows are locked with SKIP LOCKED, so nodes claiming at once split the work.
        """
        outcome = ClaimOutcome()
        async with self.db.write() as conn:
            query = (
                sa.select(tasks_t)
                .where(tasks_t.c.enabled == sa.true(), tasks_t.c.next_run_at <= now, ~PAUSED)
                .order_by(*DUE_ORDER)
                .limit(limit)
            )
            if self.db.is_postgres:
                query = query.with_for_update(skip_locked=True)
            due = [task_from_row(r) for r in await conn.execute(query)]
            outcome.examined = len(due)
            if not due:
                return outcome
            # Only a task that forbids overlap cares whether a run of it is still running.
            running = await _running_run_ids(conn, [t.id for t in due if t.overlap_policy is OverlapPolicy.FORBID])
            rows: list[dict[str, Any]] = []
            plans: dict[int, DuePlan] = {}
            queued = {t.id for t in due[start_now:]} if start_now is not None else set()
            for task in due:
                plans[task.id] = plan(task)
                status = RunStatus.QUEUED if task.id in queued else RunStatus.RUNNING
                rows.extend(_run_rows(task, unfired(task, plans[task.id]), running.get(task.id), now, node_id, status))
            won = await self._insert_runs(conn, rows, outcome) if rows else {}
            for task in due:
                if task.id in won:
                    ordered = sorted(won[task.id], key=lambda pair: pair[1])
                    outcome.claimed.append(
                        ClaimedRuns(
                            task=task,
                            run_ids=[i for i, _ in ordered],
                            scheduled_for=[s for _, s in ordered],
                            queued=task.id in queued,
                        )
                    )
            await conn.execute(_ADVANCE, _advanced(due, plans, rows, won, now, queued))
        return outcome

    async def _insert_runs(
        self, conn: AsyncConnection, rows: list[dict[str, Any]], outcome: ClaimOutcome
    ) -> dict[int, list[tuple[int, datetime]]]:
        """Insert planned run rows, skipping occurrences another node won; the running ones won, by task id."""
        statement = (
            self._insert(runs_t)
            .values(rows)
            .on_conflict_do_nothing(
                index_elements=["task_id", "scheduled_for"],
                # A literal, not a bound parameter: PostgreSQL must match it to the partial
                # index's predicate, and a generic prepared plan cannot see a parameter's value.
                index_where=sa.text("\"trigger\" = 'schedule'"),
            )
            .returning(runs_t.c.id, runs_t.c.task_id, runs_t.c.scheduled_for, runs_t.c.status)
        )
        won: dict[int, list[tuple[int, datetime]]] = {}
        for run_id, task_id, scheduled_for, status in await conn.execute(statement):
            if status in IN_FLIGHT:
                won.setdefault(task_id, []).append((run_id, _as_utc(scheduled_for)))
            else:
                outcome.skipped_runs += 1
        return won

    async def claim_manual_run(
        self,
        *,
        task: TaskRecord,
        now: datetime,
        node_id: str | None,
        triggered_by: str | None,
        trigger: Trigger = Trigger.MANUAL,
        scheduled_for: datetime | None = None,
    ) -> int:
        """Insert a run started by a person or by an upstream task, unless overlap forbids it (OverlapForbidden).

        With node_id None the run is handed over: the first node loop to adopt it (adopt_handed_runs) runs it.
        """
        async with self.db.write() as conn:
            return await claim_run(
                conn,
                task,
                now=now,
                node_id=node_id,
                triggered_by=triggered_by,
                trigger=trigger,
                scheduled_for=scheduled_for,
                lock=self.db.is_postgres,
            )

    async def adopt_handed_runs(
        self,
        *,
        node_id: str,
        handlers: Sequence[str],
        now: datetime,
        fresh_since: datetime,
        limit: int,
        run_ids: Sequence[int] | None = None,
    ) -> list[ClaimedRuns]:
        """Take over runs handed to any node (node_id NULL) whose handler this node has; one atomic UPDATE.

        Only runs handed over since `fresh_since` qualify: older ones are the reaper's. A read on the
        partial index of running runs comes first, so the loop's every step takes no write lock for nothing.
        """
        handed = (
            runs_t.c.status == RunStatus.RUNNING,
            runs_t.c.node_id.is_(None),
            runs_t.c.heartbeat_at >= fresh_since,
        )
        async with self.db.read() as conn:
            if (await conn.execute(sa.select(runs_t.c.id).where(*handed).limit(1))).first() is None:
                return []
        pick = (
            sa.select(runs_t.c.id)
            .select_from(runs_t.join(tasks_t, runs_t.c.task_id == tasks_t.c.id))
            .where(*handed, tasks_t.c.handler.in_(list(handlers)))
            .order_by(runs_t.c.id)
            .limit(limit)
        )
        if run_ids is not None:
            pick = pick.where(runs_t.c.id.in_(list(run_ids)))
        if self.db.is_postgres:
            pick = pick.with_for_update(of=runs_t, skip_locked=True)
        adopt = (
            runs_t.update()
            .where(runs_t.c.id.in_(pick.scalar_subquery()), runs_t.c.node_id.is_(None))
            .values(node_id=node_id, started_at=now, heartbeat_at=now)
            .returning(runs_t.c.id, runs_t.c.task_id, runs_t.c.scheduled_for)
        )
        async with self.db.write() as conn:
            adopted = sorted((await conn.execute(adopt)).all())
            if not adopted:
                return []
            tasks = await conn.execute(sa.select(tasks_t).where(tasks_t.c.id.in_({r.task_id for r in adopted})))
            by_id = {task.id: task for task in map(task_from_row, tasks)}
        return [
            ClaimedRuns(task=by_id[r.task_id], run_ids=[r.id], scheduled_for=[_as_utc(r.scheduled_for)])
            for r in adopted
        ]

    # -- runs --------------------------------------------------------------------------

    async def heartbeat_runs(self, run_ids: Iterable[int], now: datetime) -> dict[int, str]:
        """Mark these runs alive; returns those an operator asked to cancel, with who asked."""
        ids = list(run_ids)
        if not ids:
            return {}
        async with self.db.write() as conn:
            rows = await conn.execute(
                runs_t.update()
                .where(runs_t.c.id.in_(ids), runs_t.c.status.in_(IN_FLIGHT))
                .values(heartbeat_at=now)
                .returning(runs_t.c.id, runs_t.c.cancel_requested_at, runs_t.c.cancelled_by)
            )
            return {r.id: r.cancelled_by or "unknown" for r in rows if r.cancel_requested_at is not None}

    async def cancel_requests(self, run_ids: Iterable[int]) -> dict[int, str]:
        """Of these runs, those still running that an operator asked to cancel, with who asked (a primary-key read)."""
        ids = list(run_ids)
        if not ids:
            return {}
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(runs_t.c.id, runs_t.c.cancelled_by).where(
                    runs_t.c.id.in_(ids),
                    runs_t.c.status.in_(IN_FLIGHT),
                    runs_t.c.cancel_requested_at.is_not(None),
                )
            )
            return {r.id: r.cancelled_by or "unknown" for r in rows}

    async def request_cancel(self, run_id: int, *, by: str, now: datetime) -> RunRecord | None:
        """Ask for a running or queued run to be cancelled; a run no node holds (handed over, or queued and
        given back) ends `cancelled` at once.

        Returns the run as it is afterwards (None if there is no such run). A finished run is left as it is.
        """
        running = (runs_t.c.id == run_id, runs_t.c.status.in_(IN_FLIGHT))
        async with self.db.write() as conn:
            await conn.execute(runs_t.update().where(*running).values(cancel_requested_at=now, cancelled_by=by))
            waiting = (
                await conn.execute(
                    runs_t.update()
                    .where(*running, runs_t.c.node_id.is_(None))
                    .values(
                        status=RunStatus.CANCELLED,
                        finished_at=now,
                        duration_ms=0,
                        error=_clip(f"cancelled by {by} before any node started it", ERROR_LIMIT),
                    )
                    .returning(runs_t.c.task_id)
                )
            ).first()
            if waiting is not None:
                await conn.execute(
                    tasks_t.update()
                    .where(tasks_t.c.id == waiting.task_id, tasks_t.c.last_status.in_(IN_FLIGHT))
                    .values(last_status=RunStatus.CANCELLED)
                )
            row = (await conn.execute(_run_query().where(runs_t.c.id == run_id))).first()
        return run_from_row(row) if row else None

    async def get_pause(self) -> SchedulerPause:
        """The pause switch: one primary-key read of a one-row table."""
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(pause_t).where(pause_t.c.id == 1))).first()
        if row is None:
            return SchedulerPause(paused=False)
        return SchedulerPause(
            paused=bool(row.paused),
            reason=row.reason if row.paused else None,
            changed_by=row.changed_by,
            changed_at=_as_utc(row.changed_at) if row.changed_at else None,
        )

    async def set_pause(self, *, paused: bool, reason: str | None, by: str, now: datetime) -> SchedulerPause:
        kept_reason = reason if paused else None
        values: dict[str, Any] = {"paused": paused, "reason": kept_reason, "changed_by": by, "changed_at": now}
        statement = self._insert(pause_t).values(id=1, **values)
        async with self.db.write() as conn:
            await conn.execute(statement.on_conflict_do_update(index_elements=["id"], set_=values))
        return SchedulerPause(paused=paused, reason=kept_reason, changed_by=by, changed_at=now)

    async def fail_running(self, run_ids: Iterable[int], *, finished_at: datetime, error: str) -> int:
        """Record as failed those of `run_ids` still running (a shutdown cancelled them); returns how many."""
        ids = sorted(set(run_ids))
        if not ids:
            return 0
        async with self.db.write() as conn:
            failed = (
                await conn.execute(
                    runs_t.update()
                    .where(runs_t.c.id.in_(ids), runs_t.c.status == RunStatus.RUNNING)
                    .values(status=RunStatus.FAILED, finished_at=finished_at, error=_clip(error, ERROR_LIMIT))
                    .returning(runs_t.c.task_id)
                )
            ).all()
            task_ids = sorted({r.task_id for r in failed})
            if task_ids:
                await conn.execute(
                    tasks_t.update()
                    .where(tasks_t.c.id.in_(task_ids), tasks_t.c.last_status == RunStatus.RUNNING)
                    .values(last_status=RunStatus.FAILED)
                )
            return len(failed)

    async def reap_abandoned(self, *, now: datetime, stale_after: timedelta) -> list[RunRecord]:
        """Mark `abandoned` every running run whose node stopped heartbeating; returns them."""
        return await self._abandon(
            runs_t.c.heartbeat_at < now - stale_after,
            error=sa.func.coalesce(runs_t.c.node_id, "unknown node")
            + " stopped sending heartbeats; the run was abandoned",
            now=now,
        )

    async def abandon_orphans(
        self, *, node_id: str, executing: Iterable[int], quiet_since: datetime, now: datetime
    ) -> list[RunRecord]:
        """Mark `abandoned` the runs recorded as this node's that it is not executing and nobody heartbeats.

        A claim whose COMMIT reached the database while the connection broke leaves such a run:
        the node never heard that it had claimed it. Without this it would wait for the reaper.
        """
        mine = [runs_t.c.node_id == node_id, runs_t.c.heartbeat_at < quiet_since]
        ids = sorted(set(executing))
        if ids:
            mine.append(runs_t.c.id.not_in(ids))
        return await self._abandon(
            sa.and_(*mine),
            error=sa.literal(
                f"{node_id} claimed the run as its connection to the database broke, and never started it; "
                "the run was abandoned"
            ),
            now=now,
        )

    async def give_back(self, run_ids: Iterable[int], *, node_id: str, now: datetime) -> int:
        """Give back to the cluster these queued runs of this node (a pause, or held too long); returns how many.

        Any node with a free slot may then start them (QueuedRunStore.adopt_given_back); a run an
        operator asked to cancel ends `cancelled` instead.
        """
        ids = sorted(set(run_ids))
        if not ids:
            return 0
        async with self.db.write() as conn:
            return await give_back_queued(conn, sa.and_(runs_t.c.id.in_(ids), runs_t.c.node_id == node_id), now=now)

    async def _abandon(self, condition: Any, *, error: Any, now: datetime) -> list[RunRecord]:
        """Abandon the running runs that match; the queued ones that match are given back (they never started)."""
        async with self.db.write() as conn:
            await give_back_queued(conn, sa.and_(condition, runs_t.c.node_id.is_not(None)), now=now)
            reaped = (
                await conn.execute(
                    runs_t.update()
                    .where(runs_t.c.status == RunStatus.RUNNING, condition)
                    .values(status=RunStatus.ABANDONED, finished_at=now, error=error)
                    .returning(runs_t.c.id, runs_t.c.task_id)
                )
            ).all()
            if not reaped:
                return []
            task_ids = sorted({r.task_id for r in reaped})
            await conn.execute(
                tasks_t.update()
                .where(tasks_t.c.id.in_(task_ids), tasks_t.c.last_status == RunStatus.RUNNING)
                .values(last_status=RunStatus.ABANDONED)
            )
            rows = await conn.execute(_run_query().where(runs_t.c.id.in_([r.id for r in reaped])))
            return [run_from_row(r) for r in rows]

    async def get_run(self, run_id: int) -> RunRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(_run_query().where(runs_t.c.id == run_id))).first()
            return run_from_row(row) if row else None

    async def list_runs(
        self, filters: RunFilter | None = None, *, limit: int = 50, before_id: int | None = None
    ) -> list[RunRecord]:
        """Runs, newest first, without their tracebacks. Page on with before_id = the last id of the previous page."""
        filters = filters or RunFilter()
        query = _run_query(LIST_COLUMNS).order_by(runs_t.c.id.desc()).limit(limit)
        if filters.task is not None:
            query = query.where(tasks_t.c.name == filters.task)
        if filters.status is not None:
            query = query.where(runs_t.c.status == filters.status)
        if filters.trigger is not None:
            query = query.where(runs_t.c.trigger == filters.trigger)
        if filters.since is not None:
            query = query.where(runs_t.c.started_at >= filters.since)
        if filters.until is not None:
            query = query.where(runs_t.c.started_at < filters.until)
        if before_id is not None:
            query = query.where(runs_t.c.id < before_id)
        async with self.db.read() as conn:
            return runs_from_result(await conn.execute(query))

    async def running_runs(self, task_id: int | None = None) -> list[RunRecord]:
        query = _run_query().where(runs_t.c.status == RunStatus.RUNNING).order_by(runs_t.c.id)
        if task_id is not None:
            query = query.where(runs_t.c.task_id == task_id)
        async with self.db.read() as conn:
            return runs_from_result(await conn.execute(query))

    async def recent_runs(self, task_ids: Sequence[int], *, per_task: int) -> dict[int, list[RunPoint]]:
        """The newest `per_task` runs of each task, oldest first.

        One statement: a UNION ALL of one index-ordered, limited read per task, so a long history is never
        scanned and a page pays one database round trip however many tasks there are.
        """
        found: dict[int, list[RunPoint]] = {task_id: [] for task_id in task_ids}
        if not task_ids:
            return found
        columns = (runs_t.c.task_id, runs_t.c.id, runs_t.c.status, runs_t.c.started_at, runs_t.c.duration_ms)
        parts = [
            sa.select(
                sa.select(*columns)
                .where(runs_t.c.task_id == task_id)
                .order_by(runs_t.c.started_at.desc(), runs_t.c.id.desc())
                .limit(per_task)
                .subquery()
            )
            for task_id in task_ids
        ]
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.union_all(*parts))).all()
        for row in rows:
            found[row.task_id].append(RunPoint(row.id, row.status, row.started_at, row.duration_ms))
        for points in found.values():
            points.sort(key=lambda p: (p.started_at, p.id))
        return found


# One executemany for every due task: its next due time, the latest occurrence claimed, and for a
# task whose run this node won, the start (one statement instead of two saves a round trip a claim).
_ADVANCE = (
    tasks_t.update()
    .where(tasks_t.c.id == sa.bindparam("tid"))
    .values(
        next_run_at=sa.bindparam("b_next_run_at"),
        last_scheduled_for=sa.bindparam("b_fired"),
        last_run_at=sa.bindparam("b_last_run_at"),
        last_status=sa.bindparam("b_last_status"),
    )
)


def _advanced(
    due: Sequence[TaskRecord],
    plans: dict[int, DuePlan],
    rows: Sequence[dict[str, Any]],
    won: dict[int, Any],
    now: datetime,
    queued: set[int],
) -> list[dict[str, Any]]:
    """The _ADVANCE parameters of a claim: every due task moves on; those won also start now (or are queued)."""
    fired: dict[int, datetime] = {}
    for row in rows:
        fired[row["task_id"]] = max(fired.get(row["task_id"], row["scheduled_for"]), row["scheduled_for"])
    return [
        {
            "tid": task.id,
            "b_next_run_at": plans[task.id].next_run_at,
            "b_fired": fired.get(task.id, task.last_scheduled_for),
            "b_last_run_at": now if task.id in won else task.last_run_at,
            "b_last_status": (RunStatus.QUEUED if task.id in queued else RunStatus.RUNNING)
            if task.id in won
            else task.last_status,
        }
        for task in due
    ]


# The order due work starts in when a node may not start all of it: priority, then the due time.
DUE_ORDER = (tasks_t.c.priority.desc(), tasks_t.c.next_run_at, tasks_t.c.id)


def unfired(task: TaskRecord, plan: DuePlan) -> DuePlan:
    """The plan without the occurrences the schedule already claimed (an empty run's row may be gone)."""
    fired = task.last_scheduled_for
    if fired is None:
        return plan
    missed_latest = plan.missed_latest if plan.missed_latest is None or plan.missed_latest > fired else None
    return dataclasses.replace(
        plan,
        run=[when for when in plan.run if when > fired],
        missed=plan.missed if missed_latest is not None else 0,
        missed_latest=missed_latest,
    )


# A run in flight: started, or claimed by a node that has not started it yet.
IN_FLIGHT = (RunStatus.RUNNING, RunStatus.QUEUED)

# True while the scheduler is paused (a correlated-free EXISTS on the one-row pause table).
PAUSED = sa.exists().where(pause_t.c.id == 1, pause_t.c.paused == sa.true())


def task_from_row(row: sa.Row[Any]) -> TaskRecord:
    """A scheduler_tasks row as a record, its policies and status as enums."""
    values = row._asdict()  # one dict per row: row._mapping builds a new view at every access
    values = {name: values[name] for name in TaskRecord.__slots__}
    values["misfire_policy"] = MisfirePolicy(values["misfire_policy"])
    values["overlap_policy"] = OverlapPolicy(values["overlap_policy"])
    if values["last_status"] is not None:
        values["last_status"] = RunStatus(values["last_status"])
    return TaskRecord(**values)


def run_from_row(row: sa.Row[Any]) -> RunRecord:
    values = row._asdict()
    values = {name: values[name] for name in RunRecord.__slots__}
    values["trigger"], values["status"] = Trigger(values["trigger"]), RunStatus(values["status"])
    return RunRecord(**values)


_RUN_FIELDS = RunRecord.__slots__
_TRIGGER_AT, _STATUS_AT = _RUN_FIELDS.index("trigger"), _RUN_FIELDS.index("status")


def runs_from_result(result: sa.Result[Any]) -> list[RunRecord]:
    """Every row of `result` as a record; the columns are matched to the fields once, not per row."""
    keys = list(result.keys())
    pick = operator.itemgetter(*(keys.index(name) for name in _RUN_FIELDS))
    records = []
    for row in result:
        values = list(pick(row))
        values[_TRIGGER_AT] = Trigger(values[_TRIGGER_AT])
        values[_STATUS_AT] = RunStatus(values[_STATUS_AT])
        records.append(RunRecord(*values))
    return records


def _run_query(columns: Sequence[Any] = RUN_COLUMNS) -> sa.Select[Any]:
    return sa.select(*columns).select_from(runs_t.join(tasks_t, runs_t.c.task_id == tasks_t.c.id))


async def _running_run_ids(conn: AsyncConnection, task_ids: Sequence[int]) -> dict[int, int]:
    """For each task with a run in flight (running, or queued on a node), the id of its oldest such run."""
    if not task_ids:
        return {}
    rows = await conn.execute(
        sa.select(runs_t.c.task_id, sa.func.min(runs_t.c.id))
        .where(runs_t.c.status.in_(IN_FLIGHT), runs_t.c.task_id.in_(task_ids))
        .group_by(runs_t.c.task_id)
    )
    return {int(task_id): int(run_id) for task_id, run_id in rows}


async def claim_run(
    conn: AsyncConnection,
    task: TaskRecord,
    *,
    now: datetime,
    node_id: str | None,
    triggered_by: str | None,
    trigger: Trigger,
    scheduled_for: datetime | None,
    lock: bool,
) -> int:
    """Insert a running run of `task` unless overlap forbids it (OverlapForbidden, nothing written)."""
    if lock:  # PostgreSQL: two claims of one task wait for each other, so overlap is checked on fresh rows
        await conn.execute(sa.select(tasks_t.c.id).where(tasks_t.c.id == task.id).with_for_update())
    running = (await _running_run_ids(conn, [task.id])).get(task.id)
    if running is not None and not overlap_allows(task.overlap_policy, running=1):
        raise OverlapForbidden(task.name, running)
    run_id = (
        await conn.execute(
            runs_t.insert()
            .values(
                task_id=task.id,
                trigger=trigger,
                scheduled_for=scheduled_for or now,
                started_at=now,
                status=RunStatus.RUNNING,
                node_id=node_id,
                heartbeat_at=now,
                triggered_by=triggered_by,
            )
            .returning(runs_t.c.id)
        )
    ).scalar_one()
    await conn.execute(
        tasks_t.update().where(tasks_t.c.id == task.id).values(last_run_at=now, last_status=RunStatus.RUNNING)
    )
    return int(run_id)


async def _insert_retry(conn: AsyncConnection, task: TaskRecord, *, now: datetime, node_id: str) -> ClaimedRuns:
    failed = (await conn.execute(sa.select(runs_t.c.scheduled_for).where(runs_t.c.id == task.retry_run_id))).scalar()
    scheduled_for = _as_utc(failed) if failed is not None else now
    run_id = (
        await conn.execute(
            runs_t.insert()
            .values(
                task_id=task.id,
                trigger=Trigger.RETRY,
                scheduled_for=scheduled_for,
                started_at=now,
                status=RunStatus.RUNNING,
                node_id=node_id,
                heartbeat_at=now,
                triggered_by=f"retry {task.retry_attempt} of run {task.retry_run_id}",
                retry_of=task.retry_run_id,
                attempt=task.retry_attempt,
            )
            .returning(runs_t.c.id)
        )
    ).scalar_one()
    await conn.execute(
        tasks_t.update().where(tasks_t.c.id == task.id).values(last_run_at=now, last_status=RunStatus.RUNNING)
    )
    return ClaimedRuns(task=task, run_ids=[int(run_id)], scheduled_for=[scheduled_for])


def _run_rows(
    task: TaskRecord,
    plan: DuePlan,
    running_id: int | None,
    now: datetime,
    node_id: str,
    status: RunStatus = RunStatus.RUNNING,
) -> list[dict[str, Any]]:
    """The run rows a plan turns into: running ones to execute, or one skipped row that says why."""
    # Every row has the same columns: they go into one multi-row INSERT, which needs a value for each.
    base: dict[str, Any] = {
        "task_id": task.id,
        "trigger": Trigger.SCHEDULE,
        "node_id": node_id,
        "started_at": now,
        "heartbeat_at": None,
        "finished_at": None,
        "duration_ms": None,
        "error": None,
    }
    if plan.run and running_id is not None and not overlap_allows(task.overlap_policy, running=1):
        return [
            {
                **base,
                "scheduled_for": plan.run[-1],
                "status": RunStatus.SKIPPED,
                "finished_at": now,
                "duration_ms": 0,
                "missed": plan.missed + len(plan.run) - 1,
                "error": f"skipped: run {running_id} of this task is still running or queued (overlap policy forbid)",
            }
        ]
    if plan.run:
        rows = [
            {**base, "scheduled_for": when, "status": status, "heartbeat_at": now, "missed": 0} for when in plan.run
        ]
        rows[-1]["missed"] = plan.missed
        return rows
    if plan.missed and plan.missed_latest is not None:
        return [
            {
                **base,
                "scheduled_for": plan.missed_latest,
                "status": RunStatus.SKIPPED,
                "finished_at": now,
                "duration_ms": 0,
                "missed": plan.missed,
                "error": f"skipped: {plan.missed} occurrence(s) passed while no scheduler was running "
                f"(misfire policy {task.misfire_policy})",
            }
        ]
    return []


async def give_back_queued(conn: AsyncConnection, condition: Any, *, now: datetime) -> int:
    """Queued runs that match: those an operator asked to cancel end `cancelled`, the others lose their node."""
    queued = sa.and_(runs_t.c.status == RunStatus.QUEUED, condition)
    cancelled = (
        await conn.execute(
            runs_t.update()
            .where(queued, runs_t.c.cancel_requested_at.is_not(None))
            .values(
                status=RunStatus.CANCELLED,
                finished_at=now,
                duration_ms=0,
                error=sa.literal("cancelled by ")
                + sa.func.coalesce(runs_t.c.cancelled_by, "unknown")
                + sa.literal(" before it started"),
            )
            .returning(runs_t.c.task_id)
        )
    ).all()
    if cancelled:
        await conn.execute(
            tasks_t.update()
            .where(tasks_t.c.id.in_(sorted({r.task_id for r in cancelled})), tasks_t.c.last_status.in_(IN_FLIGHT))
            .values(last_status=RunStatus.CANCELLED)
        )
    given = await conn.execute(runs_t.update().where(queued).values(node_id=None, heartbeat_at=now))
    return int(given.rowcount or 0) + len(cancelled)


def _clip(text: str | None, limit: int, *, keep_end: bool = False) -> str | None:
    if text is None or len(text) <= limit:
        return text
    marker = "…[truncated]…"
    return marker + text[-limit:] if keep_end else text[:limit] + marker


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
