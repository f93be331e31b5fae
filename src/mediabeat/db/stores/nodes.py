"""Cluster membership and singleton duties: the scheduler_nodes and scheduler_leases tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mediabeat.db.engine import Database
from mediabeat.db.tables import scheduler_leases as leases_t
from mediabeat.db.tables import scheduler_nodes as nodes_t
from mediabeat.domain.scheduler import NodeRecord, NodeState


class NodeStore:
    """Nodes register at start-up, heartbeat while they live, and say when they stop."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self) -> Any:
        return (postgresql.insert if self.db.is_postgres else sqlite.insert)(nodes_t)

    async def register(self, *, node_id: str, host: str, pid: int, version: str, role: str, now: datetime) -> None:
        """Add this node, or take over its row again if the id is reused (a restart with a fixed node id)."""
        values = {
            "id": node_id,
            "host": host,
            "pid": pid,
            "version": version,
            "role": role,
            "started_at": now,
            "heartbeat_at": now,
            "stopped_at": None,
        }
        statement = self._insert().values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["id"], set_={k: statement.excluded[k] for k in values if k != "id"}
        )
        async with self.db.write() as conn:
            await conn.execute(statement)

    async def heartbeat(self, node_id: str, now: datetime) -> bool:
        """Mark the node alive; False if its row is gone (pruned), so the caller registers again."""
        async with self.db.write() as conn:
            result = await conn.execute(
                nodes_t.update().where(nodes_t.c.id == node_id).values(heartbeat_at=now, stopped_at=None)
            )
            return bool(result.rowcount)

    async def mark_stopped(self, node_id: str, now: datetime) -> None:
        async with self.db.write() as conn:
            await conn.execute(nodes_t.update().where(nodes_t.c.id == node_id).values(stopped_at=now, heartbeat_at=now))

    async def list_nodes(self, *, now: datetime, dead_after: timedelta) -> list[NodeRecord]:
        """Every known node, running ones first, newest first."""
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(nodes_t).order_by(nodes_t.c.started_at.desc(), nodes_t.c.id))).all()
        nodes = [_node(row, now, dead_after) for row in rows]
        order = {NodeState.RUNNING: 0, NodeState.DEAD: 1, NodeState.STOPPED: 2}
        return sorted(nodes, key=lambda n: order[n.state])

    async def dead_node_ids(self, *, now: datetime, dead_after: timedelta) -> list[str]:
        """Nodes that stopped, or stopped heartbeating more than `dead_after` ago."""
        cutoff = now - dead_after
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(nodes_t.c.id).where(
                    sa.or_(nodes_t.c.stopped_at.is_not(None), nodes_t.c.heartbeat_at < cutoff)
                )
            )
            return [str(node_id) for (node_id,) in rows]

    async def prune(self, *, older_than: datetime) -> int:
        """Forget nodes that stopped or went silent before `older_than`; returns how many."""
        async with self.db.write() as conn:
            result = await conn.execute(nodes_t.delete().where(nodes_t.c.heartbeat_at < older_than))
            return int(result.rowcount or 0)


def _node(row: sa.Row[Any], now: datetime, dead_after: timedelta) -> NodeRecord:
    heartbeat = _as_utc(row.heartbeat_at)
    if row.stopped_at is not None:
        state = NodeState.STOPPED
    elif heartbeat < now - dead_after:
        state = NodeState.DEAD
    else:
        state = NodeState.RUNNING
    return NodeRecord(
        id=row.id,
        host=row.host,
        pid=row.pid,
        version=row.version,
        role=row.role,
        started_at=_as_utc(row.started_at),
        heartbeat_at=heartbeat,
        stopped_at=_as_utc(row.stopped_at) if row.stopped_at is not None else None,
        state=state,
    )


class LeaseStore:
    """Named leases with an expiry: one holder at a time, and a dead holder's lease runs out by itself."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def acquire(self, name: str, *, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew the lease `name` until now + ttl; True if `holder` has it now.

        One statement: insert the row, or take it over when it is ours already or has
        expired. Two nodes racing for an expired lease both try the conditional update;
        the row lock (PostgreSQL) or the write lock (SQLite) lets exactly one win.
        """
        insert = (postgresql.insert if self.db.is_postgres else sqlite.insert)(leases_t)
        statement = (
            insert.values(name=name, holder=holder, expires_at=now + ttl)
            .on_conflict_do_update(
                index_elements=["name"],
                set_={"holder": insert.excluded.holder, "expires_at": insert.excluded.expires_at},
                where=sa.or_(leases_t.c.holder == holder, leases_t.c.expires_at < now),
            )
            .returning(leases_t.c.holder)
        )
        async with self.db.write() as conn:
            won = (await conn.execute(statement)).scalar()
        return bool(won == holder)

    async def release(self, name: str, *, holder: str) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(leases_t.delete().where(leases_t.c.name == name, leases_t.c.holder == holder))
            return bool(result.rowcount)

    async def holder(self, name: str, *, now: datetime) -> str | None:
        """Who holds the lease now (None when free or expired)."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(sa.select(leases_t.c.holder, leases_t.c.expires_at).where(leases_t.c.name == name))
            ).first()
        if row is None or _as_utc(row.expires_at) < now:
            return None
        return str(row.holder)


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
