"""``TasksExtension``: serves ``tasks/get``, ``tasks/update``, ``tasks/cancel`` from a
:class:`~pmcp_tasks.GenericTaskStore` and turns ``tools/call`` of task tools into tasks.

A task is written to the store before its ``CreateTaskResult`` leaves, so any instance sharing
the store can answer for it at once; everything after that goes through the store too, so the
instance that runs the handler and the one a client talks to need not be the same.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolRequestParams, CallToolResult, RequestParams

from pmcp_tasks.config import LONGEST_TTL, is_seconds
from pmcp_tasks.config import shown as shown_safely
from pmcp_tasks.context import TaskContext
from pmcp_tasks.errors import INTERNAL_ERROR, TaskError, TaskValidationError
from pmcp_tasks.mcp.owner import OwnerFn, owner_from_auth
from pmcp_tasks.mcp.wire import (
    EXTENSION_ID,
    TASK_SUPPORTS,
    TaskSupport,
    as_call_tool_result,
    carries_extension,
    create_task_result,
    declares_extension,
    invalid_params,
    missing_extension,
    result_refused,
    shown,
    task_error,
    task_id_param,
)
from pmcp_tasks.mcp.worker import Lease, quiet_cancelled_handlers, retry_transient, run_task
from pmcp_tasks.record import TaskRecord
from pmcp_tasks.store import GenericTaskStore

logger = logging.getLogger("pmcp_tasks.mcp")

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")

_CURRENT: contextvars.ContextVar[TaskContext] = contextvars.ContextVar("pmcp_tasks_current_task")

_STARTED = "pmcp_tasks/started"
"""``_meta`` key by which :meth:`TasksExtension.start` hands its task to the interceptor."""

DEFAULT_LEASE = 30.0
DEFAULT_STORAGE_PATIENCE = 5.0
"""Seconds a ``tasks/*`` request retries transient storage errors before answering -32603."""
DEFAULT_CLEANUP_INTERVAL = 60.0
"""Seconds between sweeps of expired tasks, for a store that does not expire them itself."""


def current_task() -> TaskContext:
    """The :class:`TaskContext` of the task whose handler is running (from inside it)."""
    try:
        return _CURRENT.get()
    except LookupError:
        raise RuntimeError(
            "current_task() was called outside a task: only a tool registered with "
            "TasksExtension.tool(), called by a client that declared the tasks extension, "
            "or work passed to TasksExtension.start(), runs as a task"
        ) from None


@dataclass(frozen=True)
class _TaskTool:
    support: TaskSupport
    start: Literal["on_call", "in_handler"]


class TasksExtension(Extension):
    """The tasks extension over a durable store. Pass it to ``MCPServer(extensions=[...])``.

    ``owner`` maps a request to the owner of its tasks (default :func:`owner_from_auth`).
    ``lease`` (seconds): how long a task whose worker stopped renewing stays unfinished
    before any instance ends it ``failed``. ``worker_id`` names this process in the record
    (default host, pid and a random suffix). ``storage_patience`` (seconds): how long a
    ``tasks/*`` request retries transient storage errors (a store restarting) before it answers
    -32603; a worker retries for as long as its lease lasts.

    ``cleanup_interval`` (seconds, or ``None`` for never): how often this instance removes
    expired tasks from the store (``cleanup_expired``), one sweep at a time, started by the
    first request after the interval. ``"auto"`` (the default) sweeps every
    :data:`DEFAULT_CLEANUP_INTERVAL` seconds a store that lives in this process only (the
    memory backend, which nothing else expires) and never a shared one (Redis and DynamoDB
    expire records themselves; a sweep would scan them). ``clock`` (seconds, any origin)
    paces the sweeps and the handlers' progress reports.
    """

    identifier = EXTENSION_ID

    def __init__(
        self,
        store: GenericTaskStore,
        *,
        owner: OwnerFn = owner_from_auth,
        lease: float = DEFAULT_LEASE,
        worker_id: str | None = None,
        storage_patience: float = DEFAULT_STORAGE_PATIENCE,
        cleanup_interval: float | Literal["auto"] | None = "auto",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(store, GenericTaskStore):
            raise ValueError(f"store must be a GenericTaskStore, not {type(store).__name__}")
        if not callable(owner):
            raise ValueError(f"owner must be a callable taking the request context, not {owner!r}")
        if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not lease > 0:
            raise ValueError(f"lease must be a number of seconds > 0, not {lease!r}")
        if (
            isinstance(storage_patience, bool)
            or not isinstance(storage_patience, (int, float))
            or not storage_patience >= 0
        ):
            raise ValueError(
                f"storage_patience must be a number of seconds >= 0, not {storage_patience!r}"
            )
        if cleanup_interval == "auto":
            shared = store.backend.capabilities.shared_across_processes
            cleanup_interval = None if shared else DEFAULT_CLEANUP_INTERVAL
        elif cleanup_interval is not None and (
            not is_seconds(cleanup_interval) or not 0 < cleanup_interval <= LONGEST_TTL
        ):
            raise ValueError(
                f"cleanup_interval must be a number of seconds in (0, {LONGEST_TTL:.0f}], None "
                f"or 'auto', not {shown_safely(cleanup_interval)}"
            )
        if not callable(clock):
            raise ValueError(
                f"clock must be a callable returning seconds, not {shown_safely(clock)}"
            )
        self.store = store
        self.owner = owner
        self.lease = float(lease)
        self.cleanup_interval = None if cleanup_interval is None else float(cleanup_interval)
        self.clock = clock
        self.storage_patience = float(storage_patience)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        poll = store.config.poll_interval or 1.0
        self.watch_interval = min(poll, self.lease / 3)
        """Seconds between the worker's reads of a running task (cancel, lease renewal)."""
        self._tools: dict[str, _TaskTool] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._servers: set[int] = set()
        self._swept_at: float | None = None
        self._sweeping: asyncio.Task[None] | None = None
        quiet_cancelled_handlers()

    # ----------------------------------------------------------------- declaring tools

    def tool(
        self,
        server: MCPServer[Any],
        *,
        support: TaskSupport = "optional",
        start: Literal["on_call", "in_handler"] = "on_call",
        name: str | None = None,
        meta: dict[str, Any] | None = None,
        **tool_options: Any,
    ) -> Callable[[_F], _F]:
        """Register a tool on ``server`` (like ``server.tool()``) that runs as a task.

        With ``start="on_call"`` the task is created as the call arrives and the whole
        handler runs as it (``current_task()`` gives its context). With ``"in_handler"``
        the handler runs in the request first (it may ask the client through the SDK's
        multi-round-trip flow) and hands the rest to :meth:`start`; such a tool cannot run
        without a task, so it must be ``support="required"``. ``support`` is advertised in
        ``tools/list`` as ``execution.taskSupport`` (where the official requesters read it)
        and in the tool's ``_meta`` under the extension id.
        """
        if support not in TASK_SUPPORTS:
            raise ValueError(f"support must be one of {TASK_SUPPORTS}, not {support!r}")
        if start not in ("on_call", "in_handler"):
            raise ValueError(f"start must be 'on_call' or 'in_handler', not {start!r}")
        if start == "in_handler" and support != "required":
            raise ValueError(
                'start="in_handler" hands its work to a task, which a client that did not '
                'declare the extension cannot receive: use support="required"'
            )
        if id(server) not in self._servers:
            server.middleware.append(self._middleware)
            self._servers.add(id(server))

        def register(fn: _F) -> _F:
            tool_name = name or fn.__name__
            tool_meta = {**(meta or {}), EXTENSION_ID: {"taskSupport": support}}
            server.tool(name=tool_name, meta=tool_meta, **tool_options)(fn)
            self._tools[tool_name] = _TaskTool(support, start)
            return fn

        return register

    async def start(
        self, ctx: Context[Any, Any], work: Callable[[TaskContext], Awaitable[object]]
    ) -> CallToolResult:
        """From a ``start="in_handler"`` tool: create the task, run ``work`` as it, return.

        Return this method's result from the tool; the extension answers the call with the
        task's ``CreateTaskResult``. ``work`` returns the task's result (a ``CallToolResult``
        or a str); its exceptions end the task as they would end a synchronous call.
        """
        request = ctx.request_context
        tool = str((request.params or {}).get("name"))
        if not declares_extension(request):
            raise missing_extension(f"tool {shown(tool)}", request)
        owner = self.owner(request)
        record, lease = await self._create(owner)
        self._spawn(owner, record, lease, tool, lambda: work(current_task()))
        return CallToolResult(content=[], _meta={_STARTED: create_task_result(record)})

    # ------------------------------------------------------------ the Extension surface

    def methods(self) -> Sequence[MethodBinding]:
        return (
            MethodBinding("tasks/get", RequestParams, self._tasks_get),
            MethodBinding("tasks/update", RequestParams, self._tasks_update),
            MethodBinding("tasks/cancel", RequestParams, self._tasks_cancel),
        )

    async def intercept_tool_call(
        self,
        params: CallToolRequestParams,
        ctx: ServerRequestContext[Any, Any],
        call_next: CallNext,
    ) -> HandlerResult:
        """Decide, before any handler runs, whether this call is a task, a plain call or refused.

        Only a request that declared the extension on a revision that carries it gets a
        ``CreateTaskResult``; the others never see a handler run whose answer they could not
        receive, and no task record is written for them.
        """
        tool = self._tools.get(params.name)
        if tool is None:
            return await call_next(ctx)
        if not declares_extension(ctx):
            if tool.support == "required":
                raise missing_extension(f"tool {shown(params.name)}", ctx)
            return self._deliverable(await call_next(ctx))
        if tool.start == "in_handler":
            result = await call_next(ctx)
            meta = getattr(result, "meta", None) or {}
            started = meta.get(_STARTED)
            return started if started is not None else result
        owner = self.owner(ctx)
        record, lease = await self._create(owner)
        self._spawn(owner, record, lease, params.name, lambda: call_next(ctx))
        return create_task_result(record)

    async def _middleware(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """What the extension adds around methods it does not own.

        ``subscriptions/listen`` for task notifications needs the extension (-32021), and
        ``tools/list`` shows each task tool's ``execution.taskSupport``, which the 2026-07-28
        ``Tool`` type of the SDK would otherwise drop.
        """
        if ctx.method == "subscriptions/listen" and carries_extension(ctx):
            wanted = (ctx.params or {}).get("notifications")
            if isinstance(wanted, Mapping) and "taskIds" in wanted and not declares_extension(ctx):
                raise missing_extension("subscriptions/listen for notifications.taskIds", ctx)
        result = await call_next(ctx)
        if ctx.method == "tools/list" and carries_extension(ctx) and isinstance(result, dict):
            for listed in result.get("tools") or ():
                tool = (
                    self._tools.get(str(listed.get("name"))) if isinstance(listed, dict) else None
                )
                if tool is not None:
                    listed["execution"] = {
                        **listed.get("execution", {}),
                        "taskSupport": tool.support,
                    }
        return result

    def _deliverable(self, result: HandlerResult) -> HandlerResult:
        """A task tool's synchronous result, held to the limits its task result would meet.

        A client gets the same answer whichever way it called the tool: a result too large for
        the store is refused here as it would fail the task.
        """
        if isinstance(result, CallToolResult):
            try:
                self.store.check_result(as_call_tool_result(result))
            except TaskValidationError as exc:
                raise MCPError(code=INTERNAL_ERROR, message=result_refused(exc.message)) from None
        return result

    # ------------------------------------------------------------------- tasks/* methods

    async def _tasks_get(self, ctx: ServerRequestContext[Any, Any], _: Any) -> HandlerResult:
        task_id = self._task_request(ctx, "tasks/get")
        owner = self.owner(ctx)
        record = await self._store_call(lambda: self.store.get_checking_lease(owner, task_id))
        return {"resultType": "complete", **record.to_detailed_task()}

    async def _tasks_update(self, ctx: ServerRequestContext[Any, Any], _: Any) -> HandlerResult:
        task_id = self._task_request(ctx, "tasks/update")
        responses = (ctx.params or {}).get("inputResponses")
        if not isinstance(responses, Mapping):
            raise invalid_params(
                "tasks/update needs params.inputResponses, an object of input request keys "
                f"to responses; got {type(responses).__name__} {shown(responses)}"
            )
        owner = self.owner(ctx)
        await self._store_call(lambda: self.store.answer_input(owner, task_id, responses))
        return {"resultType": "complete"}

    async def _tasks_cancel(self, ctx: ServerRequestContext[Any, Any], _: Any) -> HandlerResult:
        task_id = self._task_request(ctx, "tasks/cancel")
        owner = self.owner(ctx)
        await self._store_call(
            lambda: self.store.request_cancel(owner, task_id, "cancelled by the client")
        )
        return {"resultType": "complete"}

    # -------------------------------------------------------------------------- helpers

    def _task_request(self, ctx: ServerRequestContext[Any, Any], method: str) -> str:
        """The capability gate first (the extension says so), then the params and header."""
        self._sweep_if_due()
        if not declares_extension(ctx):
            raise missing_extension(method, ctx)
        return task_id_param(ctx, method)

    async def _store_call(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """A store call for a client's request: transient failures retried a little, then
        the store's error as the JSON-RPC error (every call here is safe to repeat)."""
        until = time.monotonic() + self.storage_patience
        try:
            return await retry_transient(call, until=until, what="a tasks request")
        except TaskError as exc:
            raise task_error(exc) from exc

    async def _create(self, owner: str) -> tuple[TaskRecord, Lease]:
        """A new task leased to this worker. Not retried: a create whose reply was lost may
        have written a task that nobody would ever poll."""
        self._sweep_if_due()
        lease = Lease.starting(self.worker_id, self.lease, since=time.monotonic())
        try:
            record = await self.store.create(owner, worker=self.worker_id, lease=self.lease)
        except TaskError as exc:
            raise task_error(exc) from exc
        return record, lease

    def _spawn(
        self,
        owner: str,
        record: TaskRecord,
        lease: Lease,
        tool: str,
        work: Callable[[], Awaitable[object]],
    ) -> None:
        context = TaskContext(
            self.store, owner, record.task_id, worker=self.worker_id, clock=self.clock
        )

        async def body() -> None:
            _CURRENT.set(context)
            await run_task(context, work, tool=tool, lease=lease, interval=self.watch_interval)

        # The handler outlives the request it came with: its own asyncio task, not the request's.
        task = asyncio.get_running_loop().create_task(body())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def _sweep_if_due(self) -> None:
        """Start a sweep of expired tasks if ``cleanup_interval`` passed since the last began.

        Requests drive it, so an instance keeps no timer of its own: the store grows only
        through this instance's creates, each of which comes here first.
        """
        if self.cleanup_interval is None:
            return
        if self._sweeping is not None and not self._sweeping.done():
            return  # one sweep at a time
        now = self.clock()
        if self._swept_at is not None and now - self._swept_at < self.cleanup_interval:
            return
        self._swept_at = now
        self._sweeping = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        try:
            removed = await self.store.cleanup_expired()
        except TaskError as exc:
            logger.warning(
                "removing expired tasks failed; the next request after %g s tries again: %s",
                self.cleanup_interval,
                exc,
            )
            return
        logger.debug("removed %d expired records", removed)

    async def aclose(self) -> None:
        """Stop the handlers still running here; their leases then lapse (see docs/mcp.md)."""
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        if self._sweeping is not None:
            await asyncio.gather(self._sweeping, return_exceptions=True)
