"""Running one task's handler in the background: outcome, cancellation, the lease, and faults.

Beside the handler a watcher reads the task every ``interval`` seconds and renews the worker's
lease whenever a third of it has passed, so that only a worker that is gone lets it run out; it
also writes the handler's last progress report held back by the rate limit.
The watcher stops the handler (cancels its asyncio task, whatever the handler awaits) when the
task became final under it: ``cancelled`` by ``tasks/cancel`` through any instance, or ended by
another instance after this worker's lease ran out (a worker paused or cut off from storage
longer than its lease), or leased to another worker (``LeaseLost``). A result the handler still
produces then is logged, never silently dropped, and so is a handler that goes on running for
a watch interval after it was cancelled. A *nudge* (a cancel seen by this instance, or a
notice from another) makes the watcher read the task at once instead of at its next tick.

Storage that fails for a moment (a Redis restart) must not cost a task: the renewal, the input
wait and the write of the outcome retry transient storage errors until the lease runs out
(:func:`retry_transient`); every write of the outcome is fenced by the worker's id.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent

from pmcp_tasks.context import TaskContext
from pmcp_tasks.errors import (
    INTERNAL_ERROR,
    BackendError,
    ConcurrentModification,
    InvalidTransition,
    LeaseLost,
    StorageFailure,
    TaskCancelled,
    TaskError,
    TaskNotFound,
    TaskValidationError,
)
from pmcp_tasks.mcp.wire import as_call_tool_result, bounded, result_refused
from pmcp_tasks.record import TaskRecord
from pmcp_tasks.status import TaskStatus
from pmcp_tasks.validation import JsonValue

logger = logging.getLogger("pmcp_tasks.mcp")

_T = TypeVar("_T")

SDK_TOOL_LOGGER = "mcp.server.mcpserver.server"
"""Where the SDK logs a tool's exception, with its traceback, as unexpected."""

RETRY_FIRST = 0.05
RETRY_CAP = 1.0
"""Seconds: the first pause after a transient storage error, and the longest one."""


class CancelledIsNoCrash(logging.Filter):
    """Drops the SDK's "unexpected exception" record for a handler stopped by a cancel.

    ``TaskCancelled`` is how a cancelled handler stops, by design; a traceback in the server
    log for every ``tasks/cancel`` would hide the crashes worth reading.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not stopped_by_cancel(record.exc_info[1] if record.exc_info else None)


def stopped_by_cancel(exc: BaseException | None) -> bool:
    """Whether ``exc`` is, or was caused by, ``TaskCancelled`` (the SDK wraps a tool's
    exceptions when a resumed task's handler runs through ``MCPServer.call_tool``)."""
    while exc is not None:
        if isinstance(exc, TaskCancelled):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def quiet_cancelled_handlers() -> None:
    """Install :class:`CancelledIsNoCrash` on the SDK's tool logger (once)."""
    sdk = logging.getLogger(SDK_TOOL_LOGGER)
    if not any(isinstance(f, CancelledIsNoCrash) for f in sdk.filters):
        sdk.addFilter(CancelledIsNoCrash())


def is_transient(exc: BaseException) -> bool:
    """A storage error worth trying again: the backend failed, or writers kept colliding.

    Not a refusal (a limit, a final task, a lost lease): those answer the same every time.
    """
    if isinstance(exc, ConcurrentModification):
        return True
    return isinstance(exc, StorageFailure) and isinstance(exc.__cause__, BackendError)


async def retry_transient(call: Callable[[], Awaitable[_T]], *, until: float, what: str) -> _T:
    """``call()``, retried with jittered exponential backoff on transient storage errors.

    ``until`` is a ``time.monotonic()`` deadline; past it the last error is raised. Every call
    retried here must be safe to repeat: the store settles a lost reply by reading back, and a
    repeated write that already landed is refused or ignored, never applied twice.
    """
    attempt = 0
    while True:
        try:
            return await call()
        except TaskError as exc:
            left = until - time.monotonic()
            if not is_transient(exc) or left <= 0:
                raise
            if attempt == 0:
                logger.warning("%s: storage failed, retrying for up to %.1f s: %s", what, left, exc)
            pause = random.uniform(0, min(RETRY_CAP, RETRY_FIRST * 2**attempt))
            await asyncio.sleep(min(pause, left))
            attempt += 1


@dataclass
class Lease:
    """This worker's hold on one task, as the worker itself last secured it.

    ``expires`` is ``time.monotonic()`` seconds, counted from before the write that set the
    lease in the store, so the worker never believes it holds a lease the store let run out.
    """

    worker: str
    seconds: float
    expires: float

    @classmethod
    def starting(cls, worker: str, seconds: float, since: float) -> Lease:
        return cls(worker, seconds, since + seconds)

    def due(self, now: float) -> bool:
        """Whether a third of the lease has passed since it was last secured."""
        return self.expires - now <= self.seconds * 2 / 3


@dataclass
class Watch:
    """How the worker watches one task.

    ``interval``: seconds between the watcher's reads; :meth:`nudge` makes it read now.
    ``slots``: the instance's limit on running handlers; the handler waits for a slot while the
    watcher already keeps the lease. ``on_tick``: called at each tick of the interval, first
    one interval after the start, while the handler runs (the resume entry's write, a no-op
    once it is written).
    """

    interval: float
    slots: asyncio.Semaphore | None = None
    on_tick: Callable[[], Awaitable[None]] | None = None
    _wake: asyncio.Future[None] | None = field(default=None, repr=False)
    _nudged: bool = field(default=False, repr=False)

    def nudge(self) -> None:
        """Make the watcher read the task now (or, while it reads, again right after)."""
        self._nudged = True
        _wake_up(self._wake)

    async def tick(self) -> bool:
        """Wait one interval or until nudged; whether the interval passed (no nudge).

        A future and a timer, as cheap as ``asyncio.sleep``: most tasks end before their
        first tick, and every create pays for the wait it cancels.
        """
        if not self._nudged:
            loop = asyncio.get_running_loop()
            self._wake = wake = loop.create_future()
            timer = loop.call_later(self.interval, _wake_up, wake)
            try:
                await wake
            finally:
                timer.cancel()
        passed = not self._nudged
        self._nudged = False
        return passed


def _wake_up(wake: asyncio.Future[None] | None) -> None:
    if wake is not None and not wake.done():
        wake.set_result(None)


def tool_error_result(tool: str, exc: Exception) -> CallToolResult:
    """A handler's exception as the SDK's synchronous path answers it: an ``isError`` result.

    The SDK's client-facing errors (``ToolError``, ``ResourceError``) carry their message to
    the client; any other exception is a crash, logged here with its traceback, and the client
    reads only ``Error executing tool <name>``.
    """
    if isinstance(exc, (ToolError, ResourceError)):
        logger.info("Tool %r failed: %r", tool, str(exc))
        text = f"Error executing tool {tool}: {exc}"
    else:
        logger.error("Tool %r raised an unexpected exception", tool, exc_info=exc)
        text = f"Error executing tool {tool}"
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


Outcome = tuple[str, JsonValue]
"""``("complete", result)`` or ``("fail", error)``: what the task's record is to become."""


def outcome_of(tool: str, handler: asyncio.Future[object]) -> Outcome | None:
    """The finished ``handler``'s outcome; ``None`` when it stopped because of a cancel.

    A returned ``CallToolResult`` or str completes the task (a tool error, ``isError: true``,
    included); an ``MCPError`` fails it with that JSON-RPC error, the only way to ``failed``.
    """
    if handler.cancelled():
        return None
    exc = handler.exception()
    if stopped_by_cancel(exc):
        return None
    if isinstance(exc, MCPError):
        return "fail", exc.error.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(exc, Exception):
        return "complete", as_call_tool_result(tool_error_result(tool, exc))
    if exc is not None:
        raise exc
    value = handler.result()
    if not isinstance(value, (CallToolResult, str)):
        wrong = TypeError(f"a task's work must return a CallToolResult or a str, not {value!r}")
        return "complete", as_call_tool_result(tool_error_result(tool, wrong))
    return "complete", as_call_tool_result(value)


async def run_task(
    context: TaskContext,
    work: Callable[[], Awaitable[object]],
    *,
    tool: str,
    lease: Lease,
    watch: Watch,
) -> bool:
    """Run ``work`` as the task of ``context``, watch it, and store how it ended.

    Returns whether the task is settled: final (or gone). ``False`` means another worker holds
    it now (or the outcome could not be stored), so whatever lets it resume must stay.
    """
    handler: asyncio.Future[object] = asyncio.ensure_future(_gated(work, watch.slots))
    watcher = asyncio.ensure_future(_watch(context, lease, watch))
    try:
        both: list[asyncio.Future[Any]] = [handler, watcher]
        await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the server is stopping (TasksExtension.aclose)
        handler.cancel()
        watcher.cancel()
        raise
    if not handler.done():
        reason = watcher.result()
        await _stop(context, handler, reason, tool, grace=watch.interval)
        return not isinstance(reason, LeaseLost)
    watcher.cancel()
    outcome = outcome_of(tool, handler)
    if outcome is None:
        return True  # the handler saw the cancel before the watcher did
    return await _store(context, lease, outcome)


async def _gated(work: Callable[[], Awaitable[object]], slots: asyncio.Semaphore | None) -> object:
    """``work()`` once a slot is free: the excess waits here, queued in arrival order."""
    if slots is None:
        return await work()
    async with slots:
        return await work()


async def _stop(
    context: TaskContext,
    handler: asyncio.Future[object],
    reason: TaskRecord | TaskError,
    tool: str,
    *,
    grace: float,
) -> None:
    """The task ended under the handler: cancel it, and log whatever it still produced.

    A handler still running ``grace`` seconds after its cancel swallowed the
    ``CancelledError`` (or blocks the loop between awaits): that is logged, then awaited.
    """
    # A task the client cancelled stops as asked: nothing to report.
    by_client = isinstance(reason, TaskRecord) and reason.status is TaskStatus.CANCELLED
    if not by_client:
        why = reason.message if isinstance(reason, TaskError) else f"it is {reason.status.value}"
        logger.warning(
            "task %s: this worker lost it (%s); cancelling its handler",
            context.task_id,
            bounded(why),
        )
    # Cancel first: a context marked cancelled at the same moment would wake the handler's
    # ``task.sleep`` normally, and ``asyncio.wait_for`` would then swallow the cancel.
    handler.cancel()
    done, _ = await asyncio.wait({handler}, timeout=grace)
    if not done:
        logger.warning(
            "task %s: its handler ignores cancellation: still running %g s after it was "
            "cancelled; waiting for it to return",
            context.task_id,
            grace,
        )
        await asyncio.gather(handler, return_exceptions=True)
    context.mark_cancelled()
    late = None if by_client or handler.cancelled() else outcome_of(tool, handler)
    if late is not None:
        logger.warning(
            "task %s: its handler finished after the task was lost; its outcome is dropped: %s",
            context.task_id,
            bounded(str(late)),
        )


async def _store(context: TaskContext, lease: Lease, outcome: Outcome) -> bool:
    """Write the outcome, fenced by the lease, retried while the lease lasts; whether the task
    is final now.

    A result the store refuses (larger than its limits) fails the task at once with an error
    naming the limit, instead of leaving it ``working`` until the lease runs out.
    """
    store, owner, task_id = context.store, context.owner, context.task_id
    kind, value = outcome

    def write() -> Awaitable[TaskRecord]:
        if kind == "complete":
            return store.complete(owner, task_id, value, worker=lease.worker)
        assert isinstance(value, dict)
        return store.fail(
            owner, task_id, str(value.get("message")), error=value, worker=lease.worker
        )

    what = f"task {task_id}: storing its outcome"
    try:
        try:
            await retry_transient(write, until=lease.expires, what=what)
        except TaskValidationError as refused:
            message = result_refused(refused.message)
            error: dict[str, JsonValue] = {"code": INTERNAL_ERROR, "message": message}
            logger.warning("task %s: %s", task_id, message)
            outcome = ("fail", error)
            await retry_transient(
                lambda: store.fail(owner, task_id, message, error=error, worker=lease.worker),
                until=lease.expires,
                what=what,
            )
    except (InvalidTransition, TaskCancelled) as exc:
        record = await _read_quietly(context)
        if record is not None and record.status is TaskStatus.CANCELLED:
            return True  # cancelled while the handler finished: the cancel wins
        _log_lost(task_id, exc, outcome)
        return True
    except TaskError as exc:
        _log_lost(task_id, exc, outcome)
        return isinstance(exc, TaskNotFound)
    return True


def _log_lost(task_id: str, exc: TaskError, outcome: Outcome) -> None:
    logger.error(
        "task %s: its outcome could not be stored and is dropped (%s): %s",
        task_id,
        bounded(exc.message),
        bounded(str(outcome)),
    )


async def _read_quietly(context: TaskContext) -> TaskRecord | None:
    try:
        return await context.store.get(context.owner, context.task_id)
    except TaskError:
        return None


async def _watch(context: TaskContext, lease: Lease, watch: Watch) -> TaskRecord | TaskError:
    """Renew the lease and look for the end of the task; returns what ended it.

    A storage error is retried at the next interval (at most a third of the lease), so a
    renewal that fails for a moment is made up well before the lease runs out.
    """
    store, owner, task_id = context.store, context.owner, context.task_id
    failing = False
    while True:
        if await watch.tick() and watch.on_tick is not None:
            await watch.on_tick()
        sent = time.monotonic()
        try:
            if lease.due(sent):
                record = await store.renew_lease(owner, task_id, lease.worker, lease.seconds)
                lease.expires = sent + lease.seconds
            else:
                record = await store.get(owner, task_id)
        except (LeaseLost, TaskNotFound) as exc:
            return exc
        except TaskError as exc:
            if not failing:
                logger.warning("task %s: the watcher could not reach it: %s", task_id, exc)
            failing = True
            continue
        if failing:
            logger.warning("task %s: the watcher reaches it again", task_id)
            failing = False
        if record.status.is_terminal:
            return record
        await _flush_report(context)


async def _flush_report(context: TaskContext) -> None:
    """Write the handler's held progress report, so that its last one is shown while it works.

    A failed write keeps the report for the next tick; the watcher's own read says whether
    the task is still this worker's.
    """
    try:
        await context.flush()
    except TaskError as exc:
        logger.warning(
            "task %s: its progress report could not be written: %s", context.task_id, exc
        )
