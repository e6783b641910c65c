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
from mcp_types import CallToolResult, TextContent
from mcp_types.jsonrpc import METHOD_NOT_FOUND
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from pmcp_tasks.errors import INVALID_PARAMS, TaskError
from pmcp_tasks.record import TaskRecord

EXTENSION_ID = "io.modelcontextprotocol/tasks"
HEADER_MISMATCH = -32020
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021

TaskSupport = Literal["optional", "required"]
"""``optional``: a task when the client declared the extension, a plain call otherwise.
``required``: a task, and -32021 for a client that did not declare the extension."""

TASK_SUPPORTS: tuple[str, ...] = ("optional", "required")


MAX_ECHO = 200
"""Characters of a client's value an error message shows; a 1 MB id is not echoed whole."""

MAX_MESSAGE = 1000
"""Characters of any error message the extension sends (a store message included)."""


def carries_extension(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this request's protocol revision has the extension at all (2026-07-28 on).

    An earlier revision (a 2025-11-25 session made with ``initialize``) cannot carry a
    ``resultType: "task"`` answer, whatever the client declared at ``initialize``: the SDK's
    serializer would refuse it after the handler ran.
    """
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def declares_extension(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether *this request* declared the extension, on a revision that carries it.

    On 2026-07-28 the SDK builds the capabilities from this request's own ``_meta``, so a
    declaration made by an earlier request never counts.
    """
    if not carries_extension(ctx):
        return False
    capabilities = ctx.session.client_capabilities
    extensions = capabilities.extensions if capabilities is not None else None
    return bool(extensions) and EXTENSION_ID in extensions  # type: ignore[operator]


def missing_extension(what: str, ctx: ServerRequestContext[Any, Any]) -> MCPError:
    """The refusal of something only a task can serve, in the words of the request's revision.

    2026-07-28: the extension's -32021 with the capability it needs. Earlier revisions know no
    such code; 2025-11-25 answers a call of a tool that must run as a task with -32601.
    """
    if not carries_extension(ctx):
        return MCPError(
            code=METHOD_NOT_FOUND,
            message=f"{what} runs only as a task of the {EXTENSION_ID} extension, which "
            f"protocol {shown(ctx.protocol_version)} does not carry; use protocol "
            f"{MODERN_PROTOCOL_VERSIONS[-1]} and declare the extension on the request",
        )
    return MCPError(
        code=MISSING_REQUIRED_CLIENT_CAPABILITY,
        message=f"{what} needs the client capability extensions[{EXTENSION_ID!r}], "
        "which this request did not declare",
        data={"requiredCapabilities": {"extensions": {EXTENSION_ID: {}}}},
    )


def bounded(message: str) -> str:
    """``message`` cut to :data:`MAX_MESSAGE` characters, saying how much was left out."""
    if len(message) <= MAX_MESSAGE:
        return message
    return f"{message[:MAX_MESSAGE]}... ({len(message) - MAX_MESSAGE} more characters)"


def result_refused(reason: str) -> str:
    """The one message for a tool result the store cannot hold, on the task and sync paths."""
    return bounded(f"the tool's result cannot be stored: {reason}")


def shown(value: object) -> str:
    """A client's value in a message: its repr, at most :data:`MAX_ECHO` characters of it."""
    text = repr(value)
    if len(text) <= MAX_ECHO:
        return text
    return f"{text[:MAX_ECHO]}... ({len(text)} characters)"


def invalid_params(message: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=bounded(message))


def task_error(exc: TaskError) -> MCPError:
    """A store error as the JSON-RPC error the client gets (-32602 or -32603, same message)."""
    return MCPError(code=exc.code, message=bounded(exc.message))


def task_id_param(ctx: ServerRequestContext[Any, Any], method: str) -> str:
    """``params.taskId``, checked against the ``Mcp-Name`` routing header.

    A load balancer routes on the header, so a body naming another task than the header is
    refused (-32020) rather than served by whichever instance it reached. A request without
    the header (not over HTTP, or an older client) is served.
    """
    params: Mapping[str, Any] = ctx.params or {}
    task_id = params.get("taskId")
    if not isinstance(task_id, str):
        got = "nothing" if task_id is None else f"{type(task_id).__name__} {shown(task_id)}"
        raise invalid_params(f"{method} needs params.taskId, a string; got {got}")
    headers = getattr(ctx.request, "headers", None)
    if headers is not None:
        raw = headers.get(MCP_NAME_HEADER)
        if raw is not None and decode_header_value(raw) != task_id:
            raise MCPError(
                code=HEADER_MISMATCH,
                message=f"the Mcp-Name header {shown(raw)} does not match params.taskId "
                f"{shown(task_id)}",
            )
    return task_id


def create_task_result(record: TaskRecord) -> dict[str, Any]:
    """The flat ``CreateTaskResult``: the ``Task`` plus ``resultType: "task"``."""
    return {"resultType": "task", **record.to_task()}


def as_call_tool_result(value: CallToolResult | str) -> dict[str, Any]:
    """What a task's handler returned, as the JSON ``CallToolResult`` the task stores.

    Always with ``resultType: "complete"``: a requester validates the inlined result as a
    2026-07-28 ``CallToolResult``, which must carry it.
    """
    if isinstance(value, str):
        value = CallToolResult(content=[TextContent(type="text", text=value)], is_error=False)
    dumped: dict[str, Any] = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    dumped.setdefault("resultType", "complete")
    return dumped
