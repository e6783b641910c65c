"""Running one task's handler in the background: outcome, cancellation and the lease.

Beside the handler a watcher reads the task every ``interval`` seconds: a ``cancelled`` status
(set by ``tasks/cancel`` through any instance) marks the handler's context cancelled, and the
worker's lease is renewed whenever a third of it has passed, so that only a worker that is gone
lets it run out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.shared.exceptions import MCPError

from pmcp_tasks.context import TaskContext
from pmcp_tasks.errors import INTERNAL_ERROR, InvalidTransition, TaskCancelled, TaskError
from pmcp_tasks.mcp.wire import as_call_tool_result
from pmcp_tasks.status import TaskStatus

logger = logging.getLogger("pmcp_tasks.mcp")

SDK_TOOL_LOGGER = "mcp.server.mcpserver.server"
"""Where the SDK logs a tool's exception, with its traceback, as unexpected."""


class CancelledIsNoCrash(logging.Filter):
    """Drops the SDK's "unexpected exception" record for a handler stopped by a cancel.

    ``TaskCancelled`` is how a cancelled handler stops, by design; a traceback in the server
    log for every ``tasks/cancel`` would hide the crashes worth reading.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, TaskCancelled):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


def quiet_cancelled_handlers() -> None:
    """Install :class:`CancelledIsNoCrash` on the SDK's tool logger (once)."""
    sdk = logging.getLogger(SDK_TOOL_LOGGER)
    if not any(isinstance(f, CancelledIsNoCrash) for f in sdk.filters):
        sdk.addFilter(CancelledIsNoCrash())


async def run_task(
    context: TaskContext,
    work: Callable[[], Awaitable[object]],
    *,
    worker: str,
    lease: float,
    interval: float,
) -> None:
    """Run ``work`` as the task of ``context`` and store how it ended.

    A returned value is the ``completed`` result (a tool error, ``isError: true``, included);
    an ``MCPError`` is the protocol error of a ``failed`` task; any other exception fails the
    task with -32603 naming it. A task that is already final (cancelled meanwhile, or ended by
    another instance after a lost lease) keeps its outcome.
    """
    watcher = asyncio.create_task(_watch(context, worker, lease, interval))
    try:
        outcome = await work()
    except TaskCancelled:
        return
    except MCPError as exc:
        error = exc.error.model_dump(mode="json", by_alias=True, exclude_none=True)
        await _settle(context.fail(exc.error.message, error=error))
    except Exception as exc:
        logger.exception("task %s: the handler raised", context.task_id)
        message = f"the task's handler raised {type(exc).__name__}: {exc}"
        await _settle(context.fail(message, error={"code": INTERNAL_ERROR, "message": message}))
    else:
        await _settle(context.complete(as_call_tool_result(outcome)))
    finally:
        watcher.cancel()


async def _settle(write: Awaitable[Any]) -> None:
    try:
        await write
    except (TaskCancelled, InvalidTransition):
        pass  # already final: cancelled, or failed by another instance
    except TaskError as exc:
        logger.error("task outcome could not be stored: %s", exc)


async def _watch(context: TaskContext, worker: str, lease: float, interval: float) -> None:
    store, owner, task_id = context.store, context.owner, context.task_id
    renewed = time.monotonic()
    while True:
        await asyncio.sleep(interval)
        try:
            if time.monotonic() - renewed >= lease / 3:
                record = await store.renew_lease(owner, task_id, worker, lease)
                renewed = time.monotonic()
            else:
                record = await store.get(owner, task_id)
        except TaskError as exc:
            logger.warning("task %s: the watcher could not read it: %s", task_id, exc)
            continue
        if record.status is TaskStatus.CANCELLED:
            context.mark_cancelled()
        if record.status.is_terminal:
            return
