"""A write-behind of finished runs: the ends that arrive while one is written go in the next transaction.

Starts are written the same way (RunStartWriter): a queued run that a node starts from its
backlog runs at once, and its start (status `running`, started_at) is written with the
others of the moment. The ends writer writes the pending starts first, so an end never
precedes its start. Until its start is written the run is `queued` under this node, which
heartbeats it; a crash in that window leaves a queued run the reaper gives back, so the
occurrence may run twice (at least once, never lost).

The slot of a run is free as soon as its handler returns; its end is written with the others
that ended meanwhile, in one transaction (group commit), instead of one transaction each.
Until its end is written, the run is still `running` in the database and this node keeps
heartbeating it. A crash in that window (a few milliseconds; longer while the database is
away) loses the outcome, not the run: the reaper marks it `abandoned` once its heartbeats
stop, exactly as for a node that died mid-run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from mediabeat.db.stores.run_ends import RunEndStore
from mediabeat.domain.scheduler import RunEnd, RunRecord, RunStart

log = logging.getLogger("mediabeat.scheduler")

# How long a batch of run ends keeps being retried while the database is away.
RECORD_RETRY_SECONDS = (0.5, 1, 2, 4, 8, 15, 30)


@dataclass(frozen=True, slots=True)
class RecordedEnd:
    """A run as recorded, and whether tasks are chained after its task (start them if it succeeded)."""

    run: RunRecord
    chained: bool = False
    # Whether the task has alert rules of its own (None: not looked up); read once for the batch.
    has_rules: bool | None = None


_Pending = tuple[RunEnd, "asyncio.Future[RecordedEnd | None]"]


class RunStartWriter:
    """Collects the starts of claimed runs and writes them in batches, behind the handlers that already run."""

    def __init__(self, store: RunEndStore) -> None:
        self.store = store
        self._pending: list[RunStart] = []
        self._writer: asyncio.Task[None] | None = None

    def add(self, start: RunStart) -> None:
        self._pending.append(start)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="mediabeat-run-starts")

    async def flush(self) -> None:
        """Wait until every start queued so far is written (or given up on)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def _write_all(self) -> None:
        await asyncio.sleep(0)  # the starts of this same turn join the batch
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self.store.record_run_starts(batch)
            except Exception as exc:  # the end still gets written (it accepts a queued run): log and go on
                log.warning("could not record the start of %d run(s): %s", len(batch), exc)


class RunEndWriter:
    """Collects run ends and writes them in batches; add() answers with the run as recorded (None if not)."""

    def __init__(
        self,
        store: RunEndStore,
        *,
        retry_seconds: Sequence[float] = RECORD_RETRY_SECONDS,
        starts: RunStartWriter | None = None,
    ) -> None:
        self.store = store
        self.starts = starts or RunStartWriter(store)
        self.retry_seconds = tuple(retry_seconds)
        self._pending: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    @property
    def pending_run_ids(self) -> list[int]:
        return [end.run_id for end, _ in self._pending]

    def add(self, end: RunEnd) -> asyncio.Future[RecordedEnd | None]:
        """Queue one run's end; the future resolves once its batch is committed (None if given up on)."""
        future: asyncio.Future[RecordedEnd | None] = asyncio.get_running_loop().create_future()
        self._pending.append((end, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="mediabeat-run-ends")
        return future

    async def flush(self) -> None:
        """Wait until every end queued so far is written (the claim looks at which runs are running)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def _write_all(self) -> None:
        await asyncio.sleep(0)  # the ends of handlers that return in this same turn join the batch
        while self._pending:
            await self.starts.flush()  # an end is never written before its start
            batch, self._pending = self._pending, []
            try:
                records, chained = await self._write(batch) or ({}, set())
            except Exception:  # a bug must not leave runs waiting forever: give them up to the reaper
                log.exception("recording the end of %d run(s) failed; the reaper will abandon them", len(batch))
                records, chained = {}, set()
            with_rules = await self._with_rules(records)
            for end, future in batch:
                run = records.get(end.run_id)
                if not future.done():
                    future.set_result(
                        None
                        if run is None
                        else RecordedEnd(
                            run,
                            chained=run.task_id in chained,
                            has_rules=None if with_rules is None else run.task_id in with_rules,
                        )
                    )

    async def _with_rules(self, records: dict[int, RunRecord]) -> set[int] | None:
        """The batch's tasks with alert rules of their own, so that each end need not ask (None: unknown)."""
        try:
            return await self.store.with_alert_rules({run.task_id for run in records.values()})
        except Exception as exc:  # each end then reads its task's rules itself, as before
            log.warning("could not read which tasks have alert rules: %s", exc)
            return None

    async def _write(self, batch: list[_Pending]) -> tuple[dict[int, RunRecord], set[int]] | None:
        """Write one batch, retrying through a database outage; None once given up (the reaper covers it)."""
        ends = [end for end, _ in batch]
        for delay in (*self.retry_seconds, None):
            try:
                return await self.store.record_run_ends(ends)
            except (sa.exc.SQLAlchemyError, OSError) as exc:
                if delay is None:
                    log.error("could not record the end of %d run(s); the reaper will abandon them: %s", len(ends), exc)
                    return None
                log.warning("recording the end of %d run(s) failed (%s); retrying in %s s", len(ends), exc, delay)
                await asyncio.sleep(delay)
        return None
