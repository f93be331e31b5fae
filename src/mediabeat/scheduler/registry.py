"""Which code runs for which handler name stored on a task."""

from __future__ import annotations

from mediabeat.tasks.base import TaskHandler


class UnknownHandler(LookupError):
    """A task names a handler that this process has not registered."""


class HandlerRegistry:
    """Handler names (as stored in scheduler_tasks.handler) mapped to handlers."""

    def __init__(self) -> None:
        self._handlers: dict[str, TaskHandler] = {}
        self._descriptions: dict[str, str] = {}

    def register(self, name: str, handler: TaskHandler, *, description: str = "") -> None:
        """Add a handler; `description` is one sentence for the people choosing it for a new task."""
        if name in self._handlers:
            raise ValueError(f"handler {name!r} is registered twice")
        self._handlers[name] = handler
        self._descriptions[name] = description

    def describe(self, name: str) -> str:
        """What the handler does, in one sentence; empty when it was registered without one."""
        return self._descriptions.get(name, "")

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
