"""``TaskContext``: what a tool handler holds while it runs as a task.

It binds a store, the caller's owner and one task id, so handler code cannot address another
owner's task by passing the wrong owner, and reads like the lifecycle it drives.
"""

from __future__ import annotations

from collections.abc import Mapping

from pmcp_tasks.record import TaskRecord
from pmcp_tasks.store import UNSET, GenericTaskStore, Unset
from pmcp_tasks.validation import JsonValue


class TaskContext:
    """One task of one owner, seen from the tool handler running it."""

    def __init__(self, store: GenericTaskStore, owner: str, task_id: str) -> None:
        if not isinstance(store, GenericTaskStore):
            raise ValueError(f"store must be a GenericTaskStore, not {type(store).__name__}")
        self.store = store
        self.owner = owner
        self.task_id = task_id

    async def get(self) -> TaskRecord:
        """The task as stored now."""
        return await self.store.get(self.owner, self.task_id)

    async def get_variables(self) -> dict[str, JsonValue]:
        """All variables of the task."""
        return (await self.get()).variables

    async def get_variable(self, name: str, default: JsonValue = None) -> JsonValue:
        """One variable, or ``default`` when it is not set."""
        return (await self.get_variables()).get(name, default)

    async def set_variables(self, changes: Mapping[str, JsonValue]) -> TaskRecord:
        """Merge ``changes`` into the variables; a ``None`` value deletes that name."""
        return await self.store.set_variables(self.owner, self.task_id, changes)

    async def set_variable(self, name: str, value: JsonValue) -> TaskRecord:
        """Set one variable (``None`` deletes it)."""
        return await self.set_variables({name: value})

    async def complete(self, result: JsonValue, *, status_message: str | None = None) -> TaskRecord:
        """Finish successfully with ``result``."""
        return await self.store.complete(
            self.owner, self.task_id, result, status_message=status_message
        )

    async def fail(
        self, status_message: str | None = None, *, result: JsonValue | Unset = UNSET
    ) -> TaskRecord:
        """Finish as failed, optionally with a result (e.g. an error payload)."""
        return await self.store.fail(self.owner, self.task_id, status_message, result=result)

    async def require_input(self, status_message: str | None = None) -> TaskRecord:
        """Wait for the client (``working -> input_required``)."""
        return await self.store.require_input(self.owner, self.task_id, status_message)

    async def resume(self, status_message: str | None = None) -> TaskRecord:
        """Carry on after the input arrived (``input_required -> working``)."""
        return await self.store.resume(self.owner, self.task_id, status_message)

    async def cancel(self, status_message: str | None = None) -> TaskRecord:
        """Stop the task (``-> cancelled``)."""
        return await self.store.cancel(self.owner, self.task_id, status_message)
