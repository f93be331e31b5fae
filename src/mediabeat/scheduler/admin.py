"""Task administration: create, change, enable, delete tasks and chain them, with every rule checked first."""

from __future__ import annotations

from datetime import UTC, datetime

from mediabeat.clock import Clock
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.domain.scheduler import NewTask, TaskChanges, TaskNotFound, TaskRecord, TaskValidationError
from mediabeat.schedule import CronSchedule, parse_schedule
from mediabeat.scheduler.changes import TASK_NAME, draft_task, validate_changes
from mediabeat.scheduler.notify import ChangeNotifier
from mediabeat.scheduler.registry import HandlerRegistry


class TaskAdmin:
    """Changes to the task table; every change wakes the loops (notifier) so they see it at once."""

    def __init__(
        self, *, store: SchedulerStore, registry: HandlerRegistry, clock: Clock, notifier: ChangeNotifier
    ) -> None:
        self.store = store
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
        if changes.after is not None:
            after_id = await self._upstream_id(task, changes.after)
            if after_id != task.after_task_id:
                values["after_task_id"] = after_id
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
            raise TaskValidationError("name", f"a task named {spec.name!r} exists already")
        if spec.handler not in self.registry:
            known = ", ".join(self.registry.names()) or "none"
            raise TaskValidationError("handler", f"no handler named {spec.handler!r} (available: {known})")
        draft = draft_task(spec)
        values = validate_changes(draft, spec.as_changes(), only_changed=False)
        values["after_task_id"] = await self._upstream_id(draft, spec.after or "")
        schedule = parse_schedule(values["cron"], values["timezone"])
        now = self.clock.now()
        values.update(name=spec.name, handler=spec.handler, params=spec.params, next_run_at=next_after(schedule, now))
        task = await self.store.create_task(values, now)
        await self.notifier.notify()
        return task

    async def delete_task(self, task_id: int) -> None:
        """Delete a task and its history; refused while one of its runs is in flight."""
        task = await self._get(task_id)
        running = await self.store.running_runs(task.id)
        if running:
            raise TaskValidationError("task", f"run {running[0].id} of {task.name!r} is still running; try again later")
        await self.store.delete_task(task.id)
        await self.notifier.notify()

    async def _upstream_id(self, task: TaskRecord, name: str) -> int | None:
        """The id of the task named `name`, checked: it exists and the chain has no loop."""
        if not name:
            return None
        upstream = await self.store.get_task_by_name(name)
        if upstream is None:
            raise TaskValidationError("after", f"no task named {name!r}")
        seen = {task.id}
        cursor: TaskRecord | None = upstream
        while cursor is not None:
            if cursor.id in seen:
                raise TaskValidationError("after", f"{task.name!r} after {name!r} would make a loop")
            seen.add(cursor.id)
            cursor = await self.store.get_task(cursor.after_task_id) if cursor.after_task_id else None
        return upstream.id


def next_after(schedule: CronSchedule, now: datetime) -> datetime | None:
    """The schedule's next fire time after `now`, in UTC (None when it never fires again)."""
    upcoming = schedule.next_fire(now)
    return upcoming.astimezone(UTC) if upcoming else None
