"""Names, codes and shapes of the tasks extension on the wire, and the errors it answers with.

Everything a client can get wrong is an ``MCPError`` with a code from the extension and a
message that names the field and shows the value, never a traceback or a -32603.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import MCP_NAME_HEADER, decode_header_value
from pydantic import BaseModel

from pmcp_tasks.errors import INVALID_PARAMS, TaskError
from pmcp_tasks.record import TaskRecord

EXTENSION_ID = "io.modelcontextprotocol/tasks"
HEADER_MISMATCH = -32020
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021

TaskSupport = Literal["optional", "required"]
"""``optional``: a task when the client declared the extension, a plain call otherwise.
``required``: a task, and -32021 for a client that did not declare the extension."""

TASK_SUPPORTS: tuple[str, ...] = ("optional", "required")


def declares_extension(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether *this request* declared the extension (2026-07-28 decides per request)."""
    capabilities = ctx.session.client_capabilities
    extensions = capabilities.extensions if capabilities is not None else None
    return bool(extensions) and EXTENSION_ID in extensions  # type: ignore[operator]


def missing_extension(what: str) -> MCPError:
    return MCPError(
        code=MISSING_REQUIRED_CLIENT_CAPABILITY,
        message=f"{what} needs the client capability extensions[{EXTENSION_ID!r}], "
        "which this request did not declare",
        data={"requiredCapabilities": {"extensions": {EXTENSION_ID: {}}}},
    )


def invalid_params(message: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=message)


def task_error(exc: TaskError) -> MCPError:
    """A store error as the JSON-RPC error the client gets (-32602 or -32603, same message)."""
    return MCPError(code=exc.code, message=exc.message)


def task_id_param(ctx: ServerRequestContext[Any, Any], method: str) -> str:
    """``params.taskId``, checked against the ``Mcp-Name`` routing header.

    A load balancer routes on the header, so a body naming another task than the header is
    refused (-32020) rather than served by whichever instance it reached. A request without
    the header (not over HTTP, or an older client) is served.
    """
    params: Mapping[str, Any] = ctx.params or {}
    task_id = params.get("taskId")
    if not isinstance(task_id, str):
        raise invalid_params(f"{method} needs params.taskId, a string; got {_shown(task_id)}")
    headers = getattr(ctx.request, "headers", None)
    if headers is not None:
        raw = headers.get(MCP_NAME_HEADER)
        if raw is not None and decode_header_value(raw) != task_id:
            raise MCPError(
                code=HEADER_MISMATCH,
                message=f"the Mcp-Name header {raw!r} does not match params.taskId {task_id!r}",
            )
    return task_id


def _shown(value: object) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:200]


def create_task_result(record: TaskRecord) -> dict[str, Any]:
    """The flat ``CreateTaskResult``: the ``Task`` plus ``resultType: "task"``."""
    return {"resultType": "task", **record.to_task()}


def as_call_tool_result(value: object) -> Any:
    """What a task's handler returned, as the JSON ``CallToolResult`` the task stores."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, str):
        return {"content": [{"type": "text", "text": value}], "isError": False}
    return value
