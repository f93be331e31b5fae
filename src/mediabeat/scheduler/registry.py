"""Which code runs for which handler name stored on a task."""

from __future__ import annotations

from mediabeat.tasks.base import TaskHandler


class UnknownHandler(LookupError):
    """A task names a handler that this process has not registered."""


class HandlerRegistry:
    """Handler names (as stored in scheduler_tasks.handler) mapped to handlers."""

    def __init__(self) -> None:
        self._handlers: dict[str, TaskHandler] = {}

    def register(self, name: str, handler: TaskHandler) -> None:
        if name in self._handlers:
            raise ValueError(f"handler {name!r} is registered twice")
        self._handlers[name] = handler

    def get(self, name: str) -> TaskHandler:
        try:
            return self._handlers[name]
        except KeyError:
            known = ", ".join(sorted(self._handlers)) or "none"
            raise UnknownHandler(f"no handler named {name!r} is registered (known: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def __contains__(self, name: object) -> bool:
        return name in self._handlers
