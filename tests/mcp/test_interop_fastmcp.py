"""The example server driven by fastmcp's client with ``fastmcp-tasks`` (PyPI), which nobody in
this project wrote. Its own tox environment (``mcp-fastmcp``, extra ``testing-mcp``): the
package brings redis-py, which the ``mcp`` environment must not have.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from example_server import RunningServer
from interop_support import a_task_fits, capped_server

try:
    import fastmcp_tasks
    from fastmcp import Client as FastMCPClient
    from fastmcp.exceptions import ToolError
except ImportError as exc:  # a missing tool fails, saying how to install it
    raise ImportError(f"{exc}: pip install 'pmcp-tasks[testing-mcp]'") from exc

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with capped_server(tmp_path_factory) as up:
        yield up


async def test_fastmcp_client_with_fastmcp_tasks(server: RunningServer) -> None:
    """fastmcp's ``Client`` with ``fastmcp-tasks`` (PyPI): it follows tasks inside
    ``call_tool``, answers input through its elicitation handler, and cancels."""

    async def confirm(message: str, response_type: Any, params: Any, context: Any) -> Any:
        return {"confirm": True}

    async with FastMCPClient(server.url, elicitation_handler=confirm) as client:
        done = await client.call_tool("slow_compute", {"seconds": 0.1})
        answered = await client.call_tool("confirm_delete", {"filename": "c.txt"})
        with pytest.raises(ToolError, match=r"^the upstream service refused the job$"):
            await client.call_tool("protocol_error_job", {})
        with pytest.raises(ToolError, match=r"^the job failed$"):
            await client.call_tool("failing_job", {})
        handle = await fastmcp_tasks.call_tool_task(client, "slow_compute", {"seconds": 600})
        await handle.cancel()
        cancelled = await handle.status()
    assert done.content[0].text == "computed result after 0.1 s"  # type: ignore[union-attr]
    assert answered.content[0].text.startswith("delete of c.txt: ")  # type: ignore[union-attr]
    assert cancelled.status == "cancelled"
    await a_task_fits(server)
