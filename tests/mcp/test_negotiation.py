"""Which answer each client generation gets, and the one shape of a task's outcome.

In process, through the SDK's own ``Client`` (legacy ``initialize`` sessions and the 2026-07-28
per-request envelope), so that the store behind the server can be inspected: a call that could
not get a task must leave no task record and must not have run its handler.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CallToolResult,
    SubscriptionsListenRequest,
    SubscriptionsListenRequestParams,
    TextContent,
)
from task_client import TERMINAL, VERSION, CreatedTask, TasksAd, TaskSession, TaskView

from pmcp_tasks import GenericTaskStore, StoreConfig, TaskContext
from pmcp_tasks.mcp import EXTENSION_ID, MISSING_REQUIRED_CLIENT_CAPABILITY, TasksExtension
from pmcp_tasks.mcp.wire import MAX_MESSAGE
from reference_backends.memory import InMemoryBackend

pytestmark = pytest.mark.anyio
SECRET = "secret-internal-detail 4711"
LIMITS = StoreConfig(allow_anonymous=True, poll_interval=0.05, max_tasks_per_owner=None)


@dataclass
class Served:
    server: MCPServer[Any]
    store: GenericTaskStore
    ran: list[str] = field(default_factory=list)


def _served() -> Served:
    store = GenericTaskStore(InMemoryBackend(), LIMITS)
    tasks = TasksExtension(store, lease=600)
    served = Served(MCPServer("negotiation", extensions=[tasks]), store)
    server = served.server

    @tasks.tool(server, support="optional")
    async def optional_echo(text: str) -> str:
        served.ran.append("optional_echo")
        return f"echo {text}"

    @tasks.tool(server, support="required")
    async def required_echo(text: str) -> str:
        served.ran.append("required_echo")
        return f"echo {text}"

    @tasks.tool(server, support="optional")
    async def sized(kib: int) -> str:
        return "x" * (kib * 1024)

    @tasks.tool(server, support="optional")
    async def many_blocks(blocks: int) -> CallToolResult:
        text = [TextContent(type="text", text="y" * 60_000) for _ in range(blocks)]
        return CallToolResult(content=list(text))

    @tasks.tool(server, support="required")
    async def on_call_crash() -> str:
        raise RuntimeError(SECRET)

    @tasks.tool(server, support="required", start="in_handler")
    async def in_handler(ctx: Context, how: str) -> Any:
        async def work(task: TaskContext) -> Any:
            if how == "str":
                return "plain text"
            if how == "crash":
                raise RuntimeError(SECRET)
            if how == "tool_error":
                raise ToolError("the file is locked")
            if how == "protocol":
                raise MCPError(code=-32000, message="upstream refused")
            return 42  # not a CallToolResult or a str

        return await tasks.start(ctx, work)

    return served


@asynccontextmanager
async def _client(served: Served, mode: str, *, declare: bool) -> AsyncIterator[TaskSession]:
    client = Client(
        served.server, mode=mode, extensions=[TasksAd()] if declare else None, cache=None
    )
    async with client:
        yield TaskSession(client)


async def _error(call: Any) -> MCPError:
    with pytest.raises(MCPError) as caught:
        await call
    return caught.value


async def _no_tasks(store: GenericTaskStore) -> None:
    listed, _ = await store.list("")
    assert listed == [], [task.task_id for task in listed]


async def _outcome(session: TaskSession, tool: str, arguments: dict[str, Any]) -> Any:
    created = await session.call(tool, arguments)
    assert isinstance(created, CreatedTask), created
    return await session.wait_for(created.task_id, *TERMINAL)


async def test_a_legacy_session_that_declared_the_extension_gets_no_task() -> None:
    """2025-11-25 cannot carry ``resultType: "task"``: sync for optional, -32601 for required."""
    served = _served()
    async with _client(served, "legacy", declare=True) as session:
        plain = await session.call("optional_echo", {"text": "hi"})
        assert isinstance(plain, CallToolResult)
        assert plain.content[0].text == "echo hi"  # type: ignore[union-attr]
        error = await _error(session.call("required_echo", {"text": "hi"}))
        assert error.code == -32601
        assert EXTENSION_ID in error.message
    assert served.ran == ["optional_echo"]  # the required tool's handler never ran
    await _no_tasks(served.store)


async def test_a_modern_request_without_the_declaration_gets_no_task() -> None:
    served = _served()
    async with _client(served, VERSION, declare=False) as session:
        plain = await session.call("optional_echo", {"text": "hi"})
        assert isinstance(plain, CallToolResult)
        error = await _error(session.call("required_echo", {"text": "hi"}))
        assert error.code == MISSING_REQUIRED_CLIENT_CAPABILITY
        assert error.error.data == {"requiredCapabilities": {"extensions": {EXTENSION_ID: {}}}}
    assert served.ran == ["optional_echo"]
    await _no_tasks(served.store)


async def test_tools_list_shows_execution_task_support_where_the_extension_exists() -> None:
    served = _served()
    for mode, shown in ((VERSION, True), ("legacy", False)):
        async with _client(served, mode, declare=True) as session:
            listed = await session.client.session.list_tools()
        tools = {
            tool.name: tool.model_dump(by_alias=True, exclude_none=True) for tool in listed.tools
        }
        assert tools["optional_echo"]["_meta"][EXTENSION_ID] == {"taskSupport": "optional"}
        if shown:
            assert tools["optional_echo"]["execution"] == {"taskSupport": "optional"}
            assert tools["required_echo"]["execution"] == {"taskSupport": "required"}
        else:
            assert "execution" not in tools["optional_echo"]


def test_in_handler_tools_must_require_the_extension() -> None:
    tasks = TasksExtension(GenericTaskStore(InMemoryBackend(), LIMITS))
    with pytest.raises(ValueError, match='support="required"'):
        tasks.tool(MCPServer("x"), support="optional", start="in_handler")


async def test_every_inlined_result_carries_its_result_type() -> None:
    served = _served()
    async with _client(served, VERSION, declare=True) as session:
        for tool, arguments in (("in_handler", {"how": "str"}), ("optional_echo", {"text": "a"})):
            done = await _outcome(session, tool, arguments)
            assert done.field("status") == "completed"
            assert done.field("result")["resultType"] == "complete"


@pytest.mark.parametrize("tool", ["on_call_crash", "in_handler"])
async def test_a_crash_is_the_sdks_is_error_result_without_its_text(tool: str) -> None:
    served = _served()
    async with _client(served, VERSION, declare=True) as session:
        done = await _outcome(session, tool, {"how": "crash"} if tool == "in_handler" else {})
    assert done.field("status") == "completed"
    result = done.field("result")
    assert result["isError"] is True
    assert result["content"] == [{"type": "text", "text": f"Error executing tool {tool}"}]
    assert SECRET not in json.dumps(done.model_extra)


async def test_the_sdks_client_facing_error_keeps_its_text_and_only_mcp_errors_fail() -> None:
    served = _served()
    async with _client(served, VERSION, declare=True) as session:
        told = await _outcome(session, "in_handler", {"how": "tool_error"})
        refused = await _outcome(session, "in_handler", {"how": "protocol"})
        wrong = await _outcome(session, "in_handler", {"how": "wrong_type"})
    assert told.field("status") == "completed"
    assert told.field("result")["content"][0]["text"] == (
        "Error executing tool in_handler: the file is locked"
    )
    assert refused.field("status") == "failed"
    assert refused.field("error") == {"code": -32000, "message": "upstream refused"}
    assert (wrong.field("status"), wrong.field("result")["isError"]) == ("completed", True)


@pytest.mark.parametrize(
    ("tool", "arguments", "limit"),
    [
        ("sized", {"kib": 70}, "the limit is 65536"),  # one 70 KiB string
        ("many_blocks", {"blocks": 35}, "StoreConfig.max_result_bytes"),  # 2 MiB in all
    ],
    ids=["70KiB-string", "2MiB-result"],
)
async def test_a_result_too_large_is_refused_alike_on_both_paths(
    tool: str, arguments: dict[str, Any], limit: str
) -> None:
    """The task fails at once with the limit named (its lease is 600 s: no lapse involved);
    the same tool called synchronously is refused with the same message."""
    served = _served()
    async with _client(served, VERSION, declare=True) as session:
        done = await _outcome(session, tool, arguments)
    async with _client(served, VERSION, declare=False) as session:
        sync = await _error(session.call(tool, arguments))
    assert done.field("status") == "failed"
    error = done.field("error")
    assert error["code"] == -32603
    assert limit in error["message"]
    assert "was lost" not in error["message"]
    assert (sync.code, sync.message) == (-32603, error["message"])


async def test_a_result_within_the_limits_is_delivered_on_both_paths() -> None:
    served = _served()
    async with _client(served, VERSION, declare=True) as session:
        done = await _outcome(session, "sized", {"kib": 60})
    async with _client(served, VERSION, declare=False) as session:
        sync = await session.call("sized", {"kib": 60})
    assert done.field("result")["content"][0]["text"] == "x" * 60 * 1024
    assert sync.content[0].text == "x" * 60 * 1024


async def test_listen_for_task_notifications_needs_the_extension() -> None:
    served = _served()
    listen = {"notifications": {"taskIds": ["some-task"]}}
    async with _client(served, VERSION, declare=False) as session:
        params = SubscriptionsListenRequestParams.model_validate(listen)
        request = SubscriptionsListenRequest(params=params)
        error = await _error(session.client.session.send_request(request, TaskView))
    assert error.code == MISSING_REQUIRED_CLIENT_CAPABILITY


async def test_error_messages_are_bounded() -> None:
    served = _served()
    huge = "01" + "f" * 1_000_000
    async with _client(served, VERSION, declare=True) as session:
        for call in (session.get(huge), session.update(huge, {"k": {}}), session.cancel(huge)):
            error = await _error(call)
            assert error.code == -32602
            assert len(error.message) <= MAX_MESSAGE + 40, len(error.message)
