"""The MCP binding: durable tasks for ``MCPServer`` (the ``io.modelcontextprotocol/tasks``
extension of MCP 2026-07-28), as an SDK :class:`~mcp.server.extension.Extension`.

Needs the ``mcp`` extra; ``import pmcp_tasks`` never loads this package.
"""

from __future__ import annotations

try:
    import mcp.server.extension  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by the extras tests
    raise ImportError(
        "pmcp_tasks.mcp needs the MCP Python SDK, which is not installed: "
        "pip install 'pmcp-tasks[mcp]'"
    ) from exc

from pmcp_tasks.mcp.extension import TasksExtension, current_task
from pmcp_tasks.mcp.owner import owner_from_auth
from pmcp_tasks.mcp.resume import ResumableContext
from pmcp_tasks.mcp.wire import (
    EXTENSION_ID,
    HEADER_MISMATCH,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    TaskSupport,
)

__all__ = [
    "EXTENSION_ID",
    "HEADER_MISMATCH",
    "MISSING_REQUIRED_CLIENT_CAPABILITY",
    "ResumableContext",
    "TaskSupport",
    "TasksExtension",
    "current_task",
    "owner_from_auth",
]
