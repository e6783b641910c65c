"""The MCP 2025-11-25 task lifecycle: five statuses and the moves between them.

The table is data rather than ``if`` chains so the tests can walk the full 5x5 matrix and a
server can show clients what is allowed. A refused move explains what the caller should do
instead, because the caller is usually a tool handler author reading a log.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType

from pmcp_tasks.config import shown
from pmcp_tasks.errors import InvalidTransition, TaskValidationError


class TaskStatus(str, Enum):
    """Wire values of the ``status`` field of an MCP ``Task``."""

    WORKING = "working"
    INPUT_REQUIRED = "input_required"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})

TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = MappingProxyType(
    {
        TaskStatus.WORKING: frozenset(
            {
                TaskStatus.INPUT_REQUIRED,
                TaskStatus.COMPLETED,
                TaskStatus.FAILED,
                TaskStatus.CANCELLED,
            }
        ),
        TaskStatus.INPUT_REQUIRED: frozenset(
            {TaskStatus.WORKING, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
        ),
        TaskStatus.COMPLETED: frozenset(),
        TaskStatus.FAILED: frozenset(),
        TaskStatus.CANCELLED: frozenset(),
    }
)


def parse_status(value: object) -> TaskStatus:
    """Accept a :class:`TaskStatus` or its wire string; anything else is a client error."""
    if isinstance(value, TaskStatus):
        return value
    if isinstance(value, str):
        try:
            return TaskStatus(value)
        except ValueError:
            pass
    allowed = ", ".join(status.value for status in TaskStatus)
    raise TaskValidationError(f"unknown task status {shown(value)}; expected one of: {allowed}")


def check_transition(task_id: str, current: TaskStatus, target: TaskStatus) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> target`` is in :data:`TRANSITIONS`."""
    if target in TRANSITIONS[current]:
        return
    prefix = f"task {task_id!r} cannot go from {current.value} to {target.value}: "
    if current.is_terminal:
        raise InvalidTransition(
            prefix + f"{current.value} is final; create a new task to run the work again"
        )
    # Every non-final status may move to every other status, so what is left is a self-move.
    hint = (
        "it is already working; to report progress, use TaskContext.report() (the status "
        "message) or store it in the task's variables"
        if current is TaskStatus.WORKING
        else "it is already waiting for input; call resume() once the input has arrived"
    )
    raise InvalidTransition(prefix + hint)
