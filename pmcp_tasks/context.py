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
import time
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
from pmcp_tasks.validation import (
    JsonValue,
    check_input_keys,
    check_json,
    check_name,
    check_owner,
    check_task_id,
    check_worker,
)

_T = TypeVar("_T")

DEFAULT_INPUT_POLL = 1.0
"""Seconds between reads while waiting for input when the store suggests no poll interval."""

MAX_REPORT_CHARS = 1000
"""Longest message :meth:`TaskContext.report` accepts: a status line, not a log."""
MAX_REPORT_COUNT = 2**53
"""Largest ``progress`` or ``total``: every int up to it is exact as a float (and shown so)."""


class TaskContext:
    """One task of one owner, seen from the tool handler running it."""

    def __init__(
        self,
        store: GenericTaskStore,
        owner: str,
        task_id: str,
        *,
        worker: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``worker`` (the id holding the task's lease) fences the progress writes; ``clock``
        (seconds, any origin) paces them."""
        if not isinstance(store, GenericTaskStore):
            raise ValueError(f"store must be a GenericTaskStore, not {type(store).__name__}")
        if not callable(clock):
            raise ValueError(f"clock must be a callable returning seconds, not {shown(clock)}")
        self.store = store
        self.owner = check_owner(owner, store.config)
        self.task_id = check_task_id(task_id)
        self.worker = None if worker is None else check_worker(worker, store.config)
        self.poll_interval = store.config.poll_interval or DEFAULT_INPUT_POLL
        self.report_interval = self.poll_interval
        """Seconds between two writes of :meth:`report` (clients see no faster change)."""
        self._clock = clock
        self._cancelled = asyncio.Event()
        self._unwritten: str | None = None
        self._reported_at: float | None = None

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

    # --------------------------------------------------------------------------- progress

    async def report(
        self, message: str, *, progress: float | None = None, total: float | None = None
    ) -> None:
        """Show ``message`` as the task's ``statusMessage``, e.g. ``report("rows", progress=40,
        total=100)`` shows ``rows (40/100)``.

        At most one store write per :attr:`report_interval`: a report that comes sooner is
        held, and a later report replaces it (only the latest is worth showing). A held report
        is written by the next report after the interval, or by :meth:`flush` (the MCP worker
        calls it every watch interval), so the last one reaches the store while the task works.
        The line is checked as the store will check it before it is held: a refused report
        raises here, once, instead of from every later flush.
        """
        line = status_line(message, progress, total)
        check_json(line, "report() message", self.store.config)
        self._check()
        self._unwritten = line
        await self.flush()

    async def flush(self) -> bool:
        """Write the held report if :attr:`report_interval` has passed; whether it wrote.

        A write that fails keeps the report held for the next try, and raises.
        """
        text = self._unwritten
        now = self._clock()
        if text is None or (
            self._reported_at is not None and now - self._reported_at < self.report_interval
        ):
            return False
        self._unwritten = None
        self._reported_at = now
        try:
            await self._write(
                lambda: self.store.set_status_message(
                    self.owner, self.task_id, text, worker=self.worker
                )
            )
        except BaseException:
            if self._unwritten is None:
                self._unwritten = text
            raise
        return True

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
        return await self._status_write(
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
        return await self._status_write(
            lambda: self.store.fail(
                self.owner, self.task_id, status_message, result=result, error=error
            )
        )

    async def require_input(self, status_message: str | None = None) -> TaskRecord:
        """Wait for the client (``working -> input_required``)."""
        return await self._status_write(
            lambda: self.store.require_input(self.owner, self.task_id, status_message)
        )

    async def resume(self, status_message: str | None = None) -> TaskRecord:
        """Carry on after the input arrived (``input_required -> working``)."""
        return await self._status_write(
            lambda: self.store.resume(self.owner, self.task_id, status_message)
        )

    async def cancel(self, status_message: str | None = None) -> TaskRecord:
        """Stop the task (``-> cancelled``)."""
        return await self._status_write(
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
        _, keys = await self._status_write(
            lambda: self.store.request_input(self.owner, self.task_id, requests, status_message)
        )
        return await self.wait_for_input(keys)

    async def wait_for_input(self, keys: Mapping[str, str]) -> dict[str, JsonValue]:
        """Wait for the answers to requests already asked (``{name: key}``), and take them.

        What :meth:`request_input` does after asking; a handler run again after its worker was
        lost (the MCP binding's resume) waits here for the questions its first run asked.
        """
        if not isinstance(keys, Mapping) or not all(isinstance(name, str) for name in keys):
            raise TaskValidationError(
                f"wait_for_input takes a mapping of names to input keys (str), not {shown(keys)}"
            )
        keys = dict(keys)
        wanted = check_input_keys(list(keys.values()), self.store.config)
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

    async def _status_write(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """A write that sets the status message itself: a held report must not replace it."""
        self._unwritten = None
        return await self._write(call)

    async def _write(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run a store call; a refusal because the task was cancelled is ``TaskCancelled``."""
        self._check()
        try:
            return await call()
        except InvalidTransition:
            self._seen(await self.store.get(self.owner, self.task_id))
            raise


def status_line(message: object, progress: object, total: object) -> str:
    """The status message of a report; a wrong argument is a ``TaskValidationError``
    naming it, so that the handler's author reads what to fix."""
    if not isinstance(message, str):
        raise TaskValidationError(f"report() message must be a str, not {type(message).__name__}")
    if len(message) > MAX_REPORT_CHARS:
        raise TaskValidationError(
            f"report() message has {len(message)} characters; at most {MAX_REPORT_CHARS} "
            "(a status line: keep details in the task's variables)"
        )
    counts = [_count(name, value) for name, value in (("progress", progress), ("total", total))]
    done, whole = counts
    if done is None:
        if whole is not None:
            raise TaskValidationError("report() got a total without a progress")
        return message
    if whole is None:
        return f"{message} ({done:g})"
    if done > whole:
        raise TaskValidationError(f"report() progress {done:g} exceeds its total {whole:g}")
    return f"{message} ({done:g}/{whole:g})"


def _count(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TaskValidationError(
            f"report() {name} must be a number or None, not {type(value).__name__} {shown(value)}"
        )
    if not is_seconds(value) or not 0 <= value <= MAX_REPORT_COUNT:
        raise TaskValidationError(
            f"report() {name} must be a finite number >= 0 and <= {MAX_REPORT_COUNT}, "
            f"not {shown(value)}"
        )
    return float(value)
