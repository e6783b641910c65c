"""``TaskContext``: what a tool handler holds while it runs as a task.

It binds a store, the caller's owner and one task id, so handler code cannot address another
owner's task by passing the wrong owner, and reads like the lifecycle it drives.

Cancellation is cooperative: whoever learns that the task was cancelled (a read of the task by
this context, or the MCP binding's watcher, which polls the store) calls :meth:`mark_cancelled`;
from then on :attr:`cancelled` is true, :meth:`wait_cancelled` returns, and every call raises
:class:`~pmcp_tasks.errors.TaskCancelled`, so the handler stops at its next call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from pmcp_tasks.config import LONGEST_TTL, is_seconds, shown
from pmcp_tasks.errors import (
    BackendError,
    InvalidTransition,
    StorageFailure,
    TaskCancelled,
    TaskValidationError,
)
from pmcp_tasks.record import TaskRecord
from pmcp_tasks.status import TaskStatus
from pmcp_tasks.store import UNSET, GenericTaskStore, Unset
from pmcp_tasks.validation import JsonValue, check_name, check_owner, check_task_id

_T = TypeVar("_T")

DEFAULT_INPUT_POLL = 1.0
"""Seconds between reads while waiting for input when the store suggests no poll interval."""


class TaskContext:
    """One task of one owner, seen from the tool handler running it."""

    def __init__(self, store: GenericTaskStore, owner: str, task_id: str) -> None:
        if not isinstance(store, GenericTaskStore):
            raise ValueError(f"store must be a GenericTaskStore, not {type(store).__name__}")
        self.store = store
        self.owner = check_owner(owner, store.config)
        self.task_id = check_task_id(task_id)
        self.poll_interval = store.config.poll_interval or DEFAULT_INPUT_POLL
        self._cancelled = asyncio.Event()

    # ----------------------------------------------------------------------- cancellation

    @property
    def cancelled(self) -> bool:
        """Whether the task is known to be cancelled."""
        return self._cancelled.is_set()

    async def wait_cancelled(self) -> None:
        """Return once the task is known to be cancelled (e.g. race it against the work)."""
        await self._cancelled.wait()

    def mark_cancelled(self) -> None:
        """Record that the task was cancelled; the handler's next call raises."""
        self._cancelled.set()

    async def sleep(self, seconds: float) -> None:
        """Sleep, but raise :class:`TaskCancelled` as soon as the task is cancelled."""
        if not is_seconds(seconds) or not 0 <= seconds <= LONGEST_TTL:
            raise TaskValidationError(
                f"sleep takes a number of seconds in [0, {LONGEST_TTL:.0f}], not {shown(seconds)}"
            )
        self._check()
        try:
            await asyncio.wait_for(self._cancelled.wait(), seconds)
        except asyncio.TimeoutError:
            return
        self._check()

    # ------------------------------------------------------------------------------ reads

    async def get(self) -> TaskRecord:
        """The task as stored now."""
        self._check()
        return self._seen(await self.store.get(self.owner, self.task_id))

    async def get_variables(self) -> dict[str, JsonValue]:
        """All variables of the task."""
        return (await self.get()).variables

    async def get_variable(self, name: str, default: JsonValue = None) -> JsonValue:
        """One variable, or ``default`` when it is not set."""
        name = check_name(name, self.store.config)
        return (await self.get_variables()).get(name, default)

    # -------------------------------------------------------------------------- mutations

    async def set_variables(self, changes: Mapping[str, JsonValue]) -> TaskRecord:
        """Merge ``changes`` into the variables; a ``None`` value deletes that name."""
        return await self._write(
            lambda: self.store.set_variables(self.owner, self.task_id, changes)
        )

    async def set_variable(self, name: str, value: JsonValue) -> TaskRecord:
        """Set one variable (``None`` deletes it)."""
        return await self.set_variables({check_name(name, self.store.config): value})

    async def complete(self, result: JsonValue, *, status_message: str | None = None) -> TaskRecord:
        """Finish successfully with ``result``."""
        return await self._write(
            lambda: self.store.complete(
                self.owner, self.task_id, result, status_message=status_message
            )
        )

    async def fail(
        self,
        status_message: str | None = None,
        *,
        result: JsonValue | Unset = UNSET,
        error: Mapping[str, JsonValue] | None = None,
    ) -> TaskRecord:
        """Finish as failed, optionally with a result or a JSON-RPC ``error`` object."""
        return await self._write(
            lambda: self.store.fail(
                self.owner, self.task_id, status_message, result=result, error=error
            )
        )

    async def require_input(self, status_message: str | None = None) -> TaskRecord:
        """Wait for the client (``working -> input_required``)."""
        return await self._write(
            lambda: self.store.require_input(self.owner, self.task_id, status_message)
        )

    async def resume(self, status_message: str | None = None) -> TaskRecord:
        """Carry on after the input arrived (``input_required -> working``)."""
        return await self._write(
            lambda: self.store.resume(self.owner, self.task_id, status_message)
        )

    async def cancel(self, status_message: str | None = None) -> TaskRecord:
        """Stop the task (``-> cancelled``)."""
        return await self._write(
            lambda: self.store.cancel(self.owner, self.task_id, status_message)
        )

    async def request_input(
        self, requests: Mapping[str, JsonValue], status_message: str | None = None
    ) -> dict[str, JsonValue]:
        """Ask the client and wait for every answer; returns ``{name: response}``.

        The task is ``input_required`` with the requests until the client answered all of them
        (``tasks/update``, through any server instance sharing the store); the store is read
        every :attr:`poll_interval` seconds meanwhile. Raises :class:`TaskCancelled` if the
        task is cancelled while it waits.
        """
        _, keys = await self._write(
            lambda: self.store.request_input(self.owner, self.task_id, requests, status_message)
        )
        wanted = list(keys.values())
        while True:
            try:
                record = await self.get()
            except StorageFailure as exc:
                # Storage failing for a moment (a restart) must not end the wait: the answer
                # is durable, so read again at the next poll (the MCP worker's lease watcher
                # stops this handler if the task is lost meanwhile). A damaged record is no
                # passing failure: it ends the wait.
                if not isinstance(exc.__cause__, BackendError):
                    raise
                record = None
            if record is not None and all(key in record.input_responses for key in wanted):
                _, taken = await self._write(
                    lambda: self.store.take_input_responses(self.owner, self.task_id, wanted)
                )
                return {name: taken[key] for name, key in keys.items()}
            try:
                await asyncio.wait_for(self._cancelled.wait(), self.poll_interval)
            except asyncio.TimeoutError:
                continue

    # ---------------------------------------------------------------------------- helpers

    def _check(self) -> None:
        if self._cancelled.is_set():
            raise TaskCancelled(self.task_id)

    def _seen(self, record: TaskRecord) -> TaskRecord:
        if record.status is TaskStatus.CANCELLED:
            self.mark_cancelled()
            raise TaskCancelled(self.task_id)
        return record

    async def _write(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run a store call; a refusal because the task was cancelled is ``TaskCancelled``."""
        self._check()
        try:
            return await call()
        except InvalidTransition:
            self._seen(await self.store.get(self.owner, self.task_id))
            raise
