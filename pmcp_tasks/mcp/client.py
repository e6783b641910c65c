"""The requester side of the tasks extension, for the official MCP Python SDK's ``Client``.

``Client(server, extensions=[TaskRequester(on_input=...)])`` declares the extension on every
request, and ``call_tool`` of a task tool then returns the task's final ``CallToolResult``: the
requester accepts the ``CreateTaskResult``, polls ``tasks/get`` at the server's
``pollIntervalMs``, answers input requests through ``on_input`` with ``tasks/update``, sends
``tasks/cancel`` when the awaiting call is cancelled, and raises the task's JSON-RPC error for a
``failed`` task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Literal

from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, ErrorData, Request, RequestParams, Result
from pydantic import ConfigDict, Field

from pmcp_tasks.mcp.wire import EXTENSION_ID

InputHandler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""``(key, request) -> response``: answers one input request of a task (an elicitation, a
sampling or a roots request, as ``{"method": ..., "params": ...}``) with its result."""

DEFAULT_POLL = 1.0
"""Seconds between polls when the server suggests no ``pollIntervalMs``."""


class CreateTaskResult(Result):
    """The extension's answer to a task-augmented ``tools/call``: a handle on the task."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    result_type: Literal["task"] = Field(alias="resultType")
    task_id: str = Field(alias="taskId")
    status: str


class TaskView(Result):
    """Any ``tasks/*`` result; its fields are kept as sent in ``model_extra``."""

    model_config = ConfigDict(extra="allow")

    def field(self, name: str) -> Any:
        return (self.model_extra or {}).get(name)


class TaskParams(RequestParams):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    task_id: Any = Field(alias="taskId")


class GetTask(Request[TaskParams, Literal["tasks/get"]]):
    name_param: ClassVar[str | None] = "taskId"  # mirrored into the Mcp-Name header


class UpdateTask(Request[TaskParams, Literal["tasks/update"]]):
    name_param: ClassVar[str | None] = "taskId"


class CancelTask(Request[TaskParams, Literal["tasks/cancel"]]):
    name_param: ClassVar[str | None] = "taskId"


class TaskCancelledError(Exception):
    """The task was cancelled (by this client or another) before it produced a result."""

    def __init__(self, task_id: str, view: TaskView) -> None:
        super().__init__(f"task {task_id!r} was cancelled: {view.field('statusMessage')}")
        self.task_id = task_id
        self.view = view


async def get_task(session: ClientSession, task_id: str) -> TaskView:
    params = TaskParams.model_validate({"taskId": task_id})
    return await session.send_request(GetTask(method="tasks/get", params=params), TaskView)


async def update_task(session: ClientSession, task_id: str, responses: dict[str, Any]) -> TaskView:
    params = TaskParams.model_validate({"taskId": task_id, "inputResponses": responses})
    return await session.send_request(UpdateTask(method="tasks/update", params=params), TaskView)


async def cancel_task(session: ClientSession, task_id: str) -> TaskView:
    params = TaskParams.model_validate({"taskId": task_id})
    return await session.send_request(CancelTask(method="tasks/cancel", params=params), TaskView)


class TaskRequester(ClientExtension):
    """Declares the tasks extension and turns each task into the call's final result.

    ``on_input`` answers the task's input requests; without it, a task that asks for input
    fails the call with ``RuntimeError`` (and is cancelled). ``on_created`` hears each task's id
    as soon as the server created it (to log it, or to find it again from elsewhere).
    ``default_poll``: seconds between polls when the server suggests none.
    """

    identifier = EXTENSION_ID

    def __init__(
        self,
        *,
        on_input: InputHandler | None = None,
        on_created: Callable[[str], Awaitable[None]] | None = None,
        default_poll: float = DEFAULT_POLL,
    ) -> None:
        if not default_poll > 0:
            raise ValueError(f"default_poll must be a number of seconds > 0, not {default_poll!r}")
        self.on_input = on_input
        self.on_created = on_created
        self.default_poll = default_poll

    def claims(self) -> Sequence[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=self.resolve)]

    async def resolve(self, created: CreateTaskResult, ctx: ClaimContext) -> CallToolResult:
        """Poll the task to its end; cancelling this coroutine cancels the task."""
        try:
            if self.on_created is not None:
                await self.on_created(created.task_id)
            return await self._follow(ctx.session, created.task_id)
        except BaseException:
            # Cancelled by the caller, or given up here: the server stops the work too.
            await asyncio.shield(_cancel_quietly(ctx.session, created.task_id))
            raise

    async def _follow(self, session: ClientSession, task_id: str) -> CallToolResult:
        answered: set[str] = set()
        while True:
            view = await get_task(session, task_id)
            status = view.field("status")
            if status == "completed":
                return CallToolResult.model_validate(view.field("result"))
            if status == "failed":
                raise MCPError.from_error_data(ErrorData.model_validate(view.field("error")))
            if status == "cancelled":
                raise TaskCancelledError(task_id, view)
            if status == "input_required":
                asked = {k: v for k, v in (view.field("inputRequests") or {}).items()}
                new = {key: request for key, request in asked.items() if key not in answered}
                if new:
                    if self.on_input is None:
                        raise RuntimeError(
                            f"task {task_id!r} asks for input ({sorted(new)}), but this "
                            "TaskRequester has no on_input callback"
                        )
                    answers = {key: await self.on_input(key, req) for key, req in new.items()}
                    await update_task(session, task_id, answers)
                    answered |= set(answers)
                    continue
            await asyncio.sleep((view.field("pollIntervalMs") or self.default_poll * 1000) / 1000)


async def _cancel_quietly(session: ClientSession, task_id: str) -> None:
    try:
        await cancel_task(session, task_id)
    except Exception:  # the connection may be gone: the task then ends by its lease or TTL
        return
