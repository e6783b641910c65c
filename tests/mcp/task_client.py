"""A step-by-step tasks client on the MCP Python SDK's own ``Client`` (streamable HTTP).

``pmcp_tasks.mcp.client.TaskRequester`` follows a task to its end inside ``call_tool``; these
tests need each step on its own (the handle, every poll, malformed requests), so this client
claims ``resultType: "task"`` without resolving it and sends the requester's ``tasks/*``
requests one at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Literal

import httpx2
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, Request

from pmcp_tasks.mcp import EXTENSION_ID
from pmcp_tasks.mcp.client import (
    CancelTask,
    CreateTaskResult,
    GetTask,
    TaskParams,
    TaskView,
    UpdateTask,
)

TERMINAL = ("completed", "failed", "cancelled")
VERSION = "2026-07-28"
MAX_POLLS = 3000  # at the default 200 ms interval, 10 minutes: far past any task these tests run


CreatedTask = CreateTaskResult


class MisroutedGet(Request[TaskParams, Literal["tasks/get"]]):
    """``tasks/get`` whose ``Mcp-Name`` comes from ``params.route``, not ``params.taskId``."""

    name_param: ClassVar[str | None] = "route"


async def _not_resolved(result: CreatedTask, ctx: ClaimContext) -> CallToolResult:
    raise AssertionError("the tests call tools with allow_claimed=True and poll themselves")


class TasksAd(ClientExtension):
    """Declares the extension and claims ``resultType: "task"`` on ``tools/call``."""

    identifier = EXTENSION_ID

    def claims(self) -> Sequence[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreatedTask, resolve=_not_resolved)]


class TaskSession:
    """One client: ``call`` a tool, and ``get``/``update``/``cancel`` tasks."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def call(self, tool: str, arguments: dict[str, Any] | None = None, **options: Any) -> Any:
        return await self.client.session.call_tool(
            tool, arguments or {}, allow_claimed=True, allow_input_required=True, **options
        )

    async def get(self, task_id: Any) -> TaskView:
        request = GetTask(method="tasks/get", params=TaskParams(task_id=task_id))
        return await self.client.session.send_request(request, TaskView)

    async def update(self, task_id: Any, responses: Any) -> TaskView:
        params = TaskParams(task_id=task_id, inputResponses=responses)
        return await self.client.session.send_request(
            UpdateTask(method="tasks/update", params=params), TaskView
        )

    async def cancel(self, task_id: Any) -> TaskView:
        request = CancelTask(method="tasks/cancel", params=TaskParams(task_id=task_id))
        return await self.client.session.send_request(request, TaskView)

    async def send(self, request: Request[Any, Any]) -> TaskView:
        return await self.client.session.send_request(request, TaskView)

    async def wait_for(self, task_id: str, *statuses: str) -> TaskView:
        """Poll ``tasks/get`` (at the task's ``pollIntervalMs``) until one of ``statuses``.

        A task that never gets there fails the test after ``MAX_POLLS`` polls (minutes, not a
        timing claim), naming the status it stayed in, instead of hanging the run.
        """
        for _ in range(MAX_POLLS):
            view = await self.get(task_id)
            if view.field("status") in statuses:
                return view
            await asyncio.sleep((view.field("pollIntervalMs") or 200) / 1000)
        raise AssertionError(
            f"task {task_id} is still {view.field('status')!r} after {MAX_POLLS} polls of "
            f"tasks/get; waited for one of {statuses}"
        )


@asynccontextmanager
async def connect(
    url: str, *, declare: bool = True, token: str | None = None
) -> AsyncIterator[TaskSession]:
    """A stateless 2026-07-28 ``Client`` on ``url``, declaring the extension unless told not."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        client = Client(
            streamable_http_client(url, http_client=http),
            mode=VERSION,
            extensions=[TasksAd()] if declare else None,
            cache=None,
        )
        async with client:
            yield TaskSession(client)
