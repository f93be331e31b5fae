"""Task administration: create, change, enable, delete tasks and chain them, with every rule checked first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from mediabeat.clock import Clock
from mediabeat.db.stores.chains import ChainStore
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.domain.scheduler import (
    ChainKind,
    ChainLink,
    NewTask,
    TaskChanges,
    TaskConflict,
    TaskNotFound,
    TaskRecord,
    TaskValidationError,
)
from mediabeat.schedule import CronSchedule, parse_schedule
from mediabeat.scheduler.chains import describe_loop, find_loop, replace_edges
from mediabeat.scheduler.changes import TASK_NAME, draft_task, validate_changes
from mediabeat.scheduler.notify import ChangeNotifier
from mediabeat.scheduler.registry import HandlerRegistry

# The most tasks one task may run after (each kind): a fan-in wider than this is a mistake.
MAX_UPSTREAMS = 100
# The API's and the CLI's name for each kind of chain.
CHAIN_FIELDS = {ChainKind.SUCCESS: "after", ChainKind.FAILURE: "on_failure_of"}
# The upstreams of each kind to set, by id, with their names.
ChainPlan = dict[ChainKind, dict[int, str]]


class TaskAdmin:
    """Changes to the task table; every change wakes the loops (notifier) so they see it at once."""

    def __init__(
        self,
        *,
        store: SchedulerStore,
        chains: ChainStore,
        registry: HandlerRegistry,
        clock: Clock,
        notifier: ChangeNotifier,
    ) -> None:
        self.store = store
        self.chains = chains
        self.registry = registry
        self.clock = clock
        self.notifier = notifier

    async def _get(self, task_id: int) -> TaskRecord:
        task = await self.store.get_task(task_id)
        if task is None:
            raise TaskNotFound(f"no task with id {task_id}")
        return task

    async def set_enabled(self, task_id: int, enabled: bool) -> TaskRecord:
        return await self.update_task(task_id, TaskChanges(enabled=enabled))

    async def toggle(self, task_id: int) -> TaskRecord:
        task = await self._get(task_id)
        return await self.set_enabled(task_id, not task.enabled)

    async def update_task(self, task_id: int, changes: TaskChanges) -> TaskRecord:
        """Validate and apply changes; a new cron, zone or re-enable recomputes next_run_at."""
        task = await self._get(task_id)
        values = validate_changes(task, changes)
        plan = await self._chain_plan(task, changes.after, changes.on_failure_of)
        if plan:
            await self._set_chains(task, plan)
        if not values:
            return task
        now = self.clock.now()
        reschedule = any(k in values for k in ("cron", "timezone")) or (values.get("enabled") and not task.enabled)
        if reschedule:
            schedule = parse_schedule(values.get("cron", task.cron), values.get("timezone", task.timezone))
            values["next_run_at"] = next_after(schedule, now)
        updated = await self.store.update_task(task_id, values, now)
        if updated is None:
            raise TaskNotFound(f"no task with id {task_id}")
        await self.notifier.notify()
        return updated

    async def create_task(self, spec: NewTask) -> TaskRecord:
        """Add a task that runs one of the registered handlers on a schedule."""
        if not TASK_NAME.fullmatch(spec.name):
            raise TaskValidationError("name", "use 1-100 lower-case letters, digits and dashes, e.g. nightly-report")
        if await self.store.get_task_by_name(spec.name) is not None:
            raise TaskConflict("name", f"a task named {spec.name!r} exists already")
        if spec.handler not in self.registry:
            known = ", ".join(self.registry.names()) or "none"
            raise TaskValidationError("handler", f"no handler named {spec.handler!r} (available: {known})")
        draft = draft_task(spec)
        values = validate_changes(draft, spec.as_changes(), only_changed=False)
        plan = await self._chain_plan(draft, spec.after, spec.on_failure_of)
        schedule = parse_schedule(values["cron"], values["timezone"])
        now = self.clock.now()
        values.update(name=spec.name, handler=spec.handler, params=spec.params, next_run_at=next_after(schedule, now))
        task = await self.store.create_task(values, now)
        if any(plan.values()):
            await self._set_chains(task, plan)
        await self.notifier.notify()
        return task

    async def delete_task(self, task_id: int) -> None:
        """Delete a task and its history; refused while one of its runs is in flight."""
        task = await self._get(task_id)
        running = await self.store.running_runs(task.id)
        if running:
            raise TaskConflict("task", f"run {running[0].id} of {task.name!r} is still running; try again later")
        await self.store.delete_task(task.id)
        await self.notifier.notify()

    async def _chain_plan(
        self, task: TaskRecord, after: tuple[str, ...] | None, on_failure_of: tuple[str, ...] | None
    ) -> ChainPlan:
        """The upstreams to set, checked: each exists, is not the task itself, and is in one list only."""
        plan: ChainPlan = {}
        for kind, names in ((ChainKind.SUCCESS, after), (ChainKind.FAILURE, on_failure_of)):
            if names is not None:
                plan[kind] = await self._upstreams(task, names, CHAIN_FIELDS[kind])
        both = sorted(set(plan.get(ChainKind.SUCCESS, {}).values()) & set(plan.get(ChainKind.FAILURE, {}).values()))
        if both:
            raise TaskValidationError(
                "on_failure_of", f"{both[0]!r} is in after too: a task runs after another's success or its failure"
            )
        return plan

    async def _upstreams(self, task: TaskRecord, names: tuple[str, ...], field: str) -> dict[int, str]:
        wanted = list(dict.fromkeys(name.strip() for name in names if name.strip()))
        if len(wanted) > MAX_UPSTREAMS:
            raise TaskValidationError(field, f"at most {MAX_UPSTREAMS} tasks")
        found: dict[int, str] = {}
        for name in wanted:
            if name == task.name:
                raise TaskValidationError(field, f"{name!r} cannot run after itself (a loop: {name} -> {name})")
            upstream = await self.store.get_task_by_name(name)
            if upstream is None:
                raise TaskValidationError(field, f"no task named {name!r}")
            found[upstream.id] = upstream.name
        return found

    async def _set_chains(self, task: TaskRecord, plan: ChainPlan) -> None:
        await self.chains.replace(task.id, {kind: list(ids) for kind, ids in plan.items()}, _refuse_loops(task, plan))


def _refuse_loops(task: TaskRecord, plan: ChainPlan) -> Callable[[list[ChainLink]], None]:
    """A check of the edges as they would be: a loop, or two kinds of chain between two tasks, is refused."""

    def check(links: list[ChainLink]) -> None:
        names = {task.id: task.name} | {i: n for ids in plan.values() for i, n in ids.items()}
        for link in links:
            names.update({link.upstream_id: link.upstream, link.downstream_id: link.downstream})
        edges = replace_edges(((k.upstream_id, k.downstream_id, k.kind) for k in links), task.id, plan)
        kinds: dict[int, ChainKind] = {}
        for up, down, kind in edges:
            if down == task.id and kinds.setdefault(up, kind) is not kind:
                other = CHAIN_FIELDS[ChainKind.FAILURE if kind is ChainKind.SUCCESS else ChainKind.SUCCESS]
                raise TaskValidationError(
                    CHAIN_FIELDS[kind], f"{names[up]!r} is in {other} already: remove it there first"
                )
        loop = find_loop(edges, task.id)
        if loop is not None:
            raise TaskValidationError(
                CHAIN_FIELDS[loop[-1][1]], f"that would make a loop: {describe_loop(loop, names)}"
            )

    return check


def next_after(schedule: CronSchedule, now: datetime) -> datetime | None:
    """The schedule's next fire time after `now`, in UTC (None when it never fires again)."""
    upcoming = schedule.next_fire(now)
    return upcoming.astimezone(UTC) if upcoming else None
