"""``TasksExtension``: serves ``tasks/get``, ``tasks/update``, ``tasks/cancel`` from a
:class:`~pmcp_tasks.GenericTaskStore` and turns ``tools/call`` of task tools into tasks.

A task is written to the store before its ``CreateTaskResult`` leaves, so any instance sharing
the store can answer for it at once; everything after that goes through the store too, so the
instance that runs the handler and the one a client talks to need not be the same. A task of a
resumable tool whose worker is lost is taken over by another instance, which runs its handler
again (:mod:`pmcp_tasks.mcp.resume`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolRequestParams, CallToolResult, RequestParams

from pmcp_tasks.config import LONGEST_TTL, is_seconds
from pmcp_tasks.config import shown as shown_safely
from pmcp_tasks.context import TaskContext
from pmcp_tasks.errors import (
    INTERNAL_ERROR,
    LeaseLost,
    StorageError,
    TaskError,
    TaskNotFound,
    TaskValidationError,
)
from pmcp_tasks.keys import task_key
from pmcp_tasks.mcp.owner import OwnerFn, owner_from_auth
from pmcp_tasks.mcp.resume import Entry, Registration, ResumableContext, ResumeLog
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
from pmcp_tasks.mcp.worker import Lease, Watch, quiet_cancelled_handlers, retry_transient, run_task
from pmcp_tasks.notify import CancelNotifier
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
DEFAULT_MAX_RUNNING = 10
"""Handlers one instance runs at once; the tasks beyond wait for a slot (a resumable tool's in
the store, for any instance with one; the others in this instance, in order)."""
RELEASED_LEASE = 0.001
"""Seconds left on a resumable task's lease when its instance stops or queues it (the
shortest one stored), so that any instance with a free slot may take it."""
DEFAULT_RESUME_ATTEMPTS = 3
"""Times a resumable task's handler is started (the first run included) before it fails."""


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
    resume: bool
    server: MCPServer[Any]


def _check_options(
    lease: object, storage_patience: object, max_running: object, resume_attempts: object
) -> None:
    """The numeric options of :class:`TasksExtension`, each named with its value if wrong."""
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
    for name, value in (("max_running", max_running), ("resume_attempts", resume_attempts)):
        if value is None and name == "max_running":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, not {shown_safely(value)}")


def _sweep_interval(cleanup_interval: object, store: GenericTaskStore) -> float | None:
    """``cleanup_interval`` checked, ``"auto"`` resolved for ``store``'s backend."""
    if cleanup_interval == "auto":
        shared = store.backend.capabilities.shared_across_processes
        return None if shared else DEFAULT_CLEANUP_INTERVAL
    if cleanup_interval is None:
        return None
    if not is_seconds(cleanup_interval) or not 0 < cleanup_interval <= LONGEST_TTL:
        raise ValueError(
            f"cleanup_interval must be a number of seconds in (0, {LONGEST_TTL:.0f}], None "
            f"or 'auto', not {shown_safely(cleanup_interval)}"
        )
    return float(cleanup_interval)


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

    ``max_running``: handlers this instance runs at once (``None``: no limit); tasks beyond it
    are created at once and wait for a slot. A resumable tool's task waits in the store, its
    lease released, and the first instance with a free slot takes it (this one included);
    another tool's task stays leased here, its handler waiting in arrival order.
    ``resume_attempts``: how many times a resumable tool's handler is started for one task
    before the task fails. ``notifier``: delivers cancels to the instance running the task at
    once (:class:`~pmcp_tasks.notify.CancelNotifier`, e.g. Redis pub/sub); without one, that
    instance finds the cancel at its next watch. The extension closes it in :meth:`aclose`.
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
        max_running: int | None = DEFAULT_MAX_RUNNING,
        resume_attempts: int = DEFAULT_RESUME_ATTEMPTS,
        notifier: CancelNotifier | None = None,
    ) -> None:
        if not isinstance(store, GenericTaskStore):
            raise ValueError(f"store must be a GenericTaskStore, not {type(store).__name__}")
        if not callable(owner):
            raise ValueError(f"owner must be a callable taking the request context, not {owner!r}")
        _check_options(lease, storage_patience, max_running, resume_attempts)
        if notifier is not None and not isinstance(notifier, CancelNotifier):
            raise ValueError(f"notifier must be a CancelNotifier, not {type(notifier).__name__}")
        if not callable(clock):
            raise ValueError(
                f"clock must be a callable returning seconds, not {shown_safely(clock)}"
            )
        self.store = store
        self.owner = owner
        self.lease = float(lease)
        self.cleanup_interval = _sweep_interval(cleanup_interval, store)
        self.clock = clock
        self.storage_patience = float(storage_patience)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        poll = store.config.poll_interval or 1.0
        self.watch_interval = min(poll, self.lease / 3)
        """Seconds between the worker's reads of a running task (cancel, lease renewal)."""
        self.max_running = max_running
        self.resume_attempts = resume_attempts
        self.notifier = notifier
        self._slots = None if max_running is None else asyncio.Semaphore(max_running)
        self._log = ResumeLog(store)
        self._tools: dict[str, _TaskTool] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._watches: dict[str, Watch] = {}
        """The watch of each task running here, by task key."""
        self._taking: set[str] = set()
        """Keys of the tasks this instance is taking over now: a scan, a ``tasks/get`` and a
        freed slot may all find the same task, and only one of them may start it."""
        self._queued: dict[str, tuple[str, str, Callable[[], Awaitable[object]]]] = {}
        """Owner, task id and work of each resumable task this instance queued in the store,
        by task key, in order: run here as the call came if this instance takes it back."""
        self._background: asyncio.Task[None] | None = None
        self._listening: asyncio.Future[None] | None = None
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
        resume: bool = False,
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

        ``resume=True``: when the worker running a task of this tool is lost, another instance
        sharing the store runs the handler again with the same arguments (at least once, up to
        ``resume_attempts`` starts; see docs/mcp.md). Only for ``start="on_call"``: an
        ``in_handler`` tool's work is a closure no other process can rebuild.
        """
        if support not in TASK_SUPPORTS:
            raise ValueError(f"support must be one of {TASK_SUPPORTS}, not {support!r}")
        if start not in ("on_call", "in_handler"):
            raise ValueError(f"start must be 'on_call' or 'in_handler', not {start!r}")
        if resume not in (True, False):
            raise ValueError(f"resume must be True or False, not {shown_safely(resume)}")
        if resume and start == "in_handler":
            raise ValueError(
                'resume=True needs start="on_call": another instance runs the tool again from '
                "its arguments, which it cannot do for work handed over inside the handler"
            )
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
            self._tools[tool_name] = _TaskTool(support, start, resume, server)
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

        async def work() -> object:
            return await call_next(ctx)

        if not tool.resume:
            self._spawn(owner, record, lease, params.name, work)
            return create_task_result(record)
        entry = Entry(owner, record.task_id, params.name, dict(params.arguments or {}))
        registration = Registration(self._log, entry, record.expires_at, written=False)
        if await self._reserve():
            await registration.ensure()  # before the client hears of the task: no gap to lose it
            self._spawn(owner, record, lease, params.name, work, registration, reserved=True)
        elif not await self._queue(entry, record, work):
            self._spawn(owner, record, lease, params.name, work, registration)
        return create_task_result(record)

    async def _reserve(self) -> bool:
        """Take a slot for a handler now, or say there is none (never wait for one: a free
        semaphore's ``acquire`` returns without suspending, and handlers queued here for a
        slot make it ``locked``, so they keep their turn)."""
        if self._slots is None:
            return True
        if self._slots.locked():
            return False
        await self._slots.acquire()
        return True

    def _unreserve(self) -> None:
        if self._slots is not None:
            self._slots.release()

    async def _queue(
        self, entry: Entry, record: TaskRecord, work: Callable[[], Awaitable[object]]
    ) -> bool:
        """No slot here: leave the task in the store, its entry written (no start yet) and its
        lease released, for the first instance with a free slot; ``False`` if that failed
        (the task then waits here, leased, as another tool's would)."""
        owner, task_id = entry.owner, entry.task_id
        try:
            await self._log.put(replace(entry, attempts=0), record.expires_at)
            await self.store.renew_lease(owner, task_id, self.worker_id, RELEASED_LEASE)
        except (StorageError, TaskError) as exc:
            logger.warning("task %s: it waits for a slot here, not in the store: %s", task_id, exc)
            return False
        self._queued[task_key(owner, task_id)] = (owner, task_id, work)
        return True

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
        record = await self._store_call(lambda: self.store.get(owner, task_id))
        if self.store.lease_lapsed(record):
            record = await self._store_call(lambda: self._lapsed(owner, task_id))
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
        await self._announce(task_key(owner, task_id))
        return {"resultType": "complete"}

    # -------------------------------------------------------------------------- helpers

    def _task_request(self, ctx: ServerRequestContext[Any, Any], method: str) -> str:
        """The capability gate first (the extension says so), then the params and header."""
        self._sweep_if_due()
        self._open_soon()
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
        self._open_soon()
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
        registration: Registration | None = None,
        *,
        reserved: bool = False,
    ) -> None:
        """Run ``work`` as the task in its own asyncio task. ``reserved``: it holds a slot
        taken by :meth:`_reserve` (given back when it ends); otherwise it waits for one."""
        context: TaskContext
        if registration is None:
            context = TaskContext(
                self.store, owner, record.task_id, worker=self.worker_id, clock=self.clock
            )
        else:
            context = ResumableContext(
                self.store, registration, worker=self.worker_id, clock=self.clock
            )
        key = task_key(owner, record.task_id)
        watch = Watch(
            self.watch_interval,
            slots=None if reserved else self._slots,
            on_tick=None if registration is None else registration.ensure,
        )

        async def body() -> None:
            _CURRENT.set(context)
            try:
                settled = await run_task(context, work, tool=tool, lease=lease, watch=watch)
            except asyncio.CancelledError:  # this instance stops (aclose)
                if registration is not None and registration.written:
                    await self._release(owner, record.task_id)
                raise
            finally:
                if self._watches.get(key) is watch:
                    del self._watches[key]
                if reserved:
                    self._unreserve()
                self._take_queued_soon()
            if settled and registration is not None:
                await registration.forget()

        # Registered before the task starts, so that a takeover racing this start sees it.
        self._watches[key] = watch
        # The handler outlives the request it came with: its own asyncio task, not the request's.
        self._keep(body())

    def _keep(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background until it ends or :meth:`aclose` cancels it."""
        task = asyncio.get_running_loop().create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def _take_queued_soon(self) -> None:
        """A slot may be free: take back the tasks this instance queued, oldest first."""
        if self._queued and (self._slots is None or not self._slots.locked()):
            self._keep(self._take_queued())

    async def _take_queued(self) -> None:
        """Each task this instance queued, while a slot is free: run here unless another
        instance took it meanwhile, or it ended (a cancel)."""
        for key, (owner, task_id, _) in list(self._queued.items()):
            if self._slots is not None and self._slots.locked():
                return
            try:
                found = await self._log.read(owner, task_id)
                if found is not None:
                    await self._look_at(found[0])
            except (TaskError, StorageError) as exc:  # the scan tries again
                logger.warning("task %s: taking it from the queue failed: %s", task_id, exc)
                return
            self._queued.pop(key, None)

    # ------------------------------------------------------- cancel notices and resumes

    async def _announce(self, key: str) -> None:
        """A task was cancelled: wake its watcher here, and tell the other instances."""
        self._on_notice(key)
        if self.notifier is None:
            return
        try:
            await self.notifier.publish(key)
        except Exception as exc:  # any notifier's failure: the store has the cancel
            logger.warning(
                "a cancel notice was not sent (its worker sees it at its next watch): %s", exc
            )

    def _on_notice(self, key: str) -> None:
        watch = self._watches.get(key)
        if watch is not None:
            watch.nudge()

    async def open(self) -> None:
        """Start listening for cancel notices (subscribed when this returns) and looking for
        lost resumable tasks to take.

        The first request does this too; a server calls it at start-up so that an instance
        no client talks to yet takes over tasks all the same.
        """
        await self._open_soon()

    def _open_soon(self) -> asyncio.Future[None]:
        """Start the background work once; the future is done once it listens."""
        if self._listening is None:
            loop = asyncio.get_running_loop()
            self._listening = loop.create_future()
            self._background = loop.create_task(self._run_background(self._listening))
        return self._listening

    async def _run_background(self, listening: asyncio.Future[None]) -> None:
        try:
            if self.notifier is not None:
                await self.notifier.listen(self._on_notice)
        except Exception as exc:  # any notifier's failure: a cancel then waits for a watch
            logger.warning("cancel notices are off (a cancel waits for the next watch): %s", exc)
        finally:
            if not listening.done():
                listening.set_result(None)
        while True:
            await asyncio.sleep(self.watch_interval)
            if any(tool.resume for tool in self._tools.values()):
                await self._scan()

    async def _scan(self) -> None:
        """Take over every resumable task whose worker let its lease lapse (not ours)."""
        try:
            async for entry in self._log.entries():
                if task_key(entry.owner, entry.task_id) not in self._watches:  # not running here
                    await self._look_at(entry)
        except (TaskError, StorageError) as exc:
            logger.warning("looking for lost resumable tasks failed: %s", exc)

    async def _look_at(self, entry: Entry) -> None:
        try:
            record = await self.store.get(entry.owner, entry.task_id)
        except TaskNotFound:
            record = None  # expired: its entry goes with it
        if record is None or record.status.is_terminal:
            await self._log.forget(entry.owner, entry.task_id)
        elif self.store.lease_lapsed(record):
            await self._lapsed(entry.owner, entry.task_id)

    async def _lapsed(self, owner: str, task_id: str) -> TaskRecord:
        """A task whose worker let its lease lapse: resumed here if it can be, else failed."""
        try:
            found = await self._log.read(owner, task_id)
        except StorageError as exc:
            logger.warning("task %s: its resume entry could not be read: %s", task_id, exc)
            return await self.store.get(owner, task_id)  # not failed: it may be resumable
        if found is not None and await self._take(found[0]):
            return await self.store.get(owner, task_id)
        record = await self.store.get_checking_lease(owner, task_id)
        if found is not None:
            await self._log.forget(owner, task_id)
        return record

    async def _release(self, owner: str, task_id: str) -> None:
        """This instance stops with a resumable task in flight: its lease ends now, so that
        another instance takes the task over at once (a rolling deploy) instead of after it."""
        try:
            await self.store.renew_lease(owner, task_id, self.worker_id, RELEASED_LEASE)
        except TaskError as exc:
            logger.warning("task %s: its lease was not released (it lapses): %s", task_id, exc)

    async def _take(self, entry: Entry) -> bool:
        """Take the task over and run its handler again; ``False`` when it cannot resume."""
        tool = self._tools.get(entry.tool)
        if tool is None or not tool.resume:
            return False
        if entry.attempts >= self.resume_attempts:
            logger.warning(
                "task %s: its handler was started %d times without finishing; it fails",
                entry.task_id,
                entry.attempts,
            )
            return False
        key = task_key(entry.owner, entry.task_id)
        if key in self._watches or key in self._taking:
            return True  # running or being taken here (a blocked loop, or a concurrent look)
        if not await self._reserve():
            return True  # no free slot here: it waits in the store for an instance with one
        started = False
        self._taking.add(key)
        try:
            started = await self._start_taken(entry, tool)
        finally:
            self._taking.discard(key)
            if not started:  # the slot goes back whatever stopped the start
                self._unreserve()
        return True

    async def _start_taken(self, entry: Entry, tool: _TaskTool) -> bool:
        """With a slot reserved: take the task's lease and start its handler here; ``False``
        when another instance took it first or it has ended."""
        owner, task_id = entry.owner, entry.task_id
        lease = Lease.starting(self.worker_id, self.lease, since=time.monotonic())
        try:
            record = await self.store.take_over_lease(owner, task_id, self.worker_id, self.lease)
        except LeaseLost:
            return False
        if record.status.is_terminal:
            return False
        started = replace(entry, attempts=entry.attempts + 1)
        try:
            entry = (
                await self._log.change(
                    owner, task_id, lambda e: replace(e, attempts=e.attempts + 1), record.expires_at
                )
                or started
            )
        except StorageError as exc:  # the task is ours now: run it, counted next time
            logger.warning("task %s: its start was not counted: %s", task_id, exc)
            entry = started
        if entry.attempts > 1:
            logger.warning(
                "task %s: its worker was lost; running %s again here (start %d of %d)",
                task_id,
                shown(entry.tool),
                entry.attempts,
                self.resume_attempts,
            )
        registration = Registration(self._log, entry, record.expires_at, written=True)
        server, name, arguments = tool.server, entry.tool, dict(entry.arguments)
        queued = self._queued.pop(task_key(owner, task_id), None)
        work = queued[2] if queued else lambda: server.call_tool(name, arguments)
        self._spawn(owner, record, lease, name, work, registration, reserved=True)
        return True

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
        """Stop the handlers still running here. A resumable task's lease is released, so that
        another instance takes it over at once; other tasks' leases lapse (see docs/mcp.md)."""
        if self._background is not None:
            self._background.cancel()
            await asyncio.gather(self._background, return_exceptions=True)
        self._queued.clear()  # their leases are released: other instances take them
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        if self.notifier is not None:
            await self.notifier.aclose()
        if self._sweeping is not None:
            await asyncio.gather(self._sweeping, return_exceptions=True)
