"""Queries for alert rules per task and the alerts they raised, including the exactly-once claim of an alert."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mediabeat.db.engine import Database
from mediabeat.db.stores.scheduler import IN_FLIGHT, LIST_COLUMNS, runs_from_result, task_from_row
from mediabeat.db.tables import scheduler_task_runs as runs_t
from mediabeat.db.tables import scheduler_tasks as tasks_t
from mediabeat.db.tables import task_alert_rules as rules_t
from mediabeat.db.tables import task_alerts as alerts_t
from mediabeat.domain.scheduler import RunRecord, TaskRecord
from mediabeat.domain.task_alerts import AlertKind, AlertRules, TaskAlertRecord

MESSAGE_LIMIT = 2_000


class TaskAlertStore:
    """task_alert_rules and task_alerts, on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def rules(self, task_id: int) -> AlertRules | None:
        """The task's rules, or None when it has none (the defaults apply)."""
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(rules_t).where(rules_t.c.task_id == task_id))).first()
        return _rules(row) if row is not None else None

    async def save_rules(self, rules: AlertRules) -> AlertRules:
        values = {k: v for k, v in asdict(rules).items() if k != "task_id"}
        insert = (postgresql.insert if self.db.is_postgres else sqlite.insert)(rules_t)
        statement = insert.values(task_id=rules.task_id, **values).on_conflict_do_update(
            index_elements=["task_id"], set_=values
        )
        async with self.db.write() as conn:
            await conn.execute(statement)
        return rules

    async def watched(
        self, *, runs_per_task: int, alerts_since: datetime
    ) -> list[tuple[TaskRecord, AlertRules, list[RunRecord], list[TaskAlertRecord]]]:
        """Tasks whose rules need the periodic check (late, missing or slow), each with its rules, its newest
        runs and its alerts since `alerts_since`, newest first: three statements however many tasks.

        The tasks are read first, in the same transaction: a claim writes the run and moves
        next_run_at in one commit, so a run whose occurrence next_run_at has passed is always
        among the runs read after it.
        """
        async with self.db.read() as conn:
            rows = (await conn.execute(_WATCHED)).all()
            if not rows:
                return []
            ids = [row.id for row in rows]
            runs = runs_from_result(await conn.execute(_newest_runs(ids, runs_per_task)))
            alerts_query = (
                sa.select(alerts_t)
                .where(alerts_t.c.task_id.in_(ids), alerts_t.c.created_at >= alerts_since)
                .order_by(alerts_t.c.id.desc())
            )
            alerts = [_alert(row) for row in await conn.execute(alerts_query)]
        runs_of: dict[int, list[RunRecord]] = {task_id: [] for task_id in ids}
        for run in runs:
            runs_of[run.task_id].append(run)
        alerts_of: dict[int, list[TaskAlertRecord]] = {task_id: [] for task_id in ids}
        for alert in alerts:
            alerts_of[alert.task_id].append(alert)
        found = []
        for row in rows:
            values = row._asdict()
            rules = _rules_from({name[5:]: values[name] for name in values if name.startswith("rule_")})
            task_runs = sorted(runs_of[row.id], key=lambda r: r.id, reverse=True)
            found.append((task_from_row(row), rules, task_runs, alerts_of[row.id]))
        return found

    async def outcome_history(self, task_id: int, up_to_run: int, *, limit: int) -> list[RunRecord]:
        """The task's finished runs up to and including `up_to_run`, newest first (for a failure streak)."""
        query = (
            sa.select(*LIST_COLUMNS)
            .join_from(runs_t, tasks_t, runs_t.c.task_id == tasks_t.c.id)
            .where(runs_t.c.task_id == task_id, runs_t.c.id <= up_to_run, runs_t.c.status.not_in(IN_FLIGHT))
            .order_by(runs_t.c.id.desc())
            .limit(limit)
        )
        async with self.db.read() as conn:
            return runs_from_result(await conn.execute(query))

    async def record(
        self,
        *,
        task_id: int,
        kind: AlertKind,
        key: str,
        run_id: int | None,
        occurrence: datetime | None,
        message: str,
        destination: str,
        muted: bool,
        node_id: str,
        now: datetime,
    ) -> TaskAlertRecord | None:
        """Claim an alert: the new row, or None when another node (or an earlier check) already raised it."""
        values = {
            "task_id": task_id,
            "kind": kind.value,
            "key": key,
            "run_id": run_id,
            "occurrence": occurrence,
            "message": message[:MESSAGE_LIMIT],
            "destination": destination,
            "muted": muted,
            "node_id": node_id,
            "created_at": now,
        }
        insert = (postgresql.insert if self.db.is_postgres else sqlite.insert)(alerts_t)
        statement = insert.values(**values).on_conflict_do_nothing().returning(alerts_t)
        async with self.db.write() as conn:
            row = (await conn.execute(statement)).first()
        return _alert(row) if row is not None else None

    async def recent(self, task_id: int, *, limit: int) -> list[TaskAlertRecord]:
        """The task's newest alerts, newest first."""
        query = sa.select(alerts_t).where(alerts_t.c.task_id == task_id).order_by(alerts_t.c.id.desc()).limit(limit)
        async with self.db.read() as conn:
            return [_alert(row) for row in await conn.execute(query)]

    async def last_outcome_alert(self, task_id: int) -> AlertKind | None:
        """The kind of the task's newest failure or recovery alert."""
        kinds = (AlertKind.FAILURE.value, AlertKind.RECOVERY.value)
        query = (
            sa.select(alerts_t.c.kind)
            .where(alerts_t.c.task_id == task_id, alerts_t.c.kind.in_(kinds))
            .order_by(alerts_t.c.id.desc())
            .limit(1)
        )
        async with self.db.read() as conn:
            kind = (await conn.execute(query)).scalar()
        return AlertKind(kind) if kind is not None else None


_WATCHED = (
    sa.select(tasks_t, *[c.label(f"rule_{c.name}") for c in rules_t.c])
    .join(rules_t, rules_t.c.task_id == tasks_t.c.id)
    .where(
        sa.or_(
            rules_t.c.late_after_s.is_not(None),
            rules_t.c.missing == sa.true(),
            rules_t.c.slower_than_s.is_not(None),
            rules_t.c.slower_than_p95.is_not(None),
        )
    )
    .order_by(tasks_t.c.id)
)


def _newest_runs(task_ids: list[int], limit: int) -> sa.CompoundSelect[Any]:
    """The newest `limit` runs of each task: one index-ordered, limited read per task, in one UNION ALL."""
    parts = [
        sa.select(
            sa.select(*LIST_COLUMNS)
            .join_from(runs_t, tasks_t, runs_t.c.task_id == tasks_t.c.id)
            .where(runs_t.c.task_id == task_id)
            .order_by(runs_t.c.id.desc())
            .limit(limit)
            .subquery()
        )
        for task_id in task_ids
    ]
    return sa.union_all(*parts)


def _rules(row: sa.Row[Any]) -> AlertRules:
    return _rules_from(row._asdict())


def _rules_from(values: dict[str, Any]) -> AlertRules:
    return AlertRules(**{name: values[name] for name in AlertRules.__slots__})


def _alert(row: sa.Row[Any]) -> TaskAlertRecord:
    values = row._asdict()
    values["kind"] = AlertKind(values["kind"])
    return TaskAlertRecord(**{name: values[name] for name in TaskAlertRecord.__slots__})
