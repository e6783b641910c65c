"""The example server driven by clients nobody in this project wrote (npm packages pinned in
.ci/package.json): the MCP Inspector CLI in its default (2025-11-25) and its modern mode, a
2025-11-25 client of the TypeScript SDK 1.x that declares the extension, and the official
requester, ``@modelcontextprotocol/client`` with ``@modelcontextprotocol/ext-tasks``
(fastmcp's client: test_interop_fastmcp.py).

The server runs with a cap of one unfinished task per owner, so that a task record left behind
by a call that was answered synchronously or refused would make the next task call fail.
Known client limitation: the Inspector CLI cannot answer input requests (a task waiting for
input keeps it polling), so input is exercised by the Python requester (test_requester.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from example_server import RunningServer
from interop_support import a_task_fits, capped_server
from servers import node_tools_path, require_node_tool

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with capped_server(tmp_path_factory) as up:
        yield up


ROOT = Path(__file__).parents[2]
NODE_MODULES = ROOT / ".ci" / "node_modules"
NOT_A_TASK = "runs only as a task of the io.modelcontextprotocol/tasks extension"


def _environment(**extra: str) -> dict[str, str]:
    """The clients run on .ci's Node.js 22 (their ``#!/usr/bin/env node`` finds it first)."""
    return {**os.environ, "PATH": node_tools_path(), **extra}


def _inspector(server: RunningServer, home: Path, era: str, tool: str, **args: Any) -> Any:
    """One ``tools/call`` through the Inspector CLI; its JSON output (result or error)."""
    command = [require_node_tool("mcp-inspector"), "--cli", server.url, "--format", "json", "-q"]
    command += ["--method", "tools/call", "--tool-name", tool, "--tool-args-json", json.dumps(args)]
    if era != "default":
        command += ["--protocol-era", era]
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, env=_environment(HOME=str(home))
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("{")]
    assert lines, f"no JSON from the Inspector CLI (exit {done.returncode}):\n{done.stderr}"
    return [json.loads(line) for line in lines]


def _node_client(script_name: str, server: RunningServer, tool: str, **args: Any) -> Any:
    """Run one of the Node.js clients in ``interop/`` on ``tool``: its last line of JSON."""
    script = Path(__file__).parent / "interop" / script_name
    done = subprocess.run(
        [require_node_tool("node"), str(script), server.url, tool, json.dumps(args)],
        capture_output=True,
        text=True,
        check=False,
        env=_environment(PMCP_NODE_MODULES=str(NODE_MODULES)),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


async def test_inspector_cli_default_mode_gets_plain_answers(
    server: RunningServer, tmp_path: Path
) -> None:
    """Its default is a 2025-11-25 session declaring the extension: no task can reach it."""
    (plain,) = _inspector(server, tmp_path, "default", "slow_compute", seconds=0.1)
    assert plain["result"]["content"][0]["text"] == "computed result after 0.1 s"
    (refused,) = _inspector(server, tmp_path, "default", "confirm_delete", filename="a")
    assert NOT_A_TASK in refused["error"]["message"]
    await a_task_fits(server)


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
    await a_task_fits(server)


async def test_typescript_sdk_1_client_declaring_the_extension(server: RunningServer) -> None:
    plain = _node_client("sdk1_client.mjs", server, "slow_compute", seconds=0.1)
    assert plain["protocol"] == "2025-11-25"
    assert plain["result"]["content"][0]["text"] == "computed result after 0.1 s"
    refused = _node_client("sdk1_client.mjs", server, "confirm_delete", filename="a")
    assert refused["error"]["code"] == -32601
    assert NOT_A_TASK in refused["error"]["message"]
    await a_task_fits(server)


async def test_the_official_requester_client_with_ext_tasks(server: RunningServer) -> None:
    """@modelcontextprotocol/client 2.x on 2026-07-28 with @modelcontextprotocol/ext-tasks:
    task results validate against its schemas, input goes through its callback, and a
    JSON-RPC error is its TaskFailedError."""
    done = _node_client("ext_tasks_client.mjs", server, "slow_compute", seconds=0.1)
    assert done["outcome"]["status"] == "completed"
    assert done["outcome"]["task"]["status"] == "completed"  # it ran as a task
    assert done["result"]["content"][0]["text"] == "computed result after 0.1 s"
    answered = _node_client("ext_tasks_client.mjs", server, "confirm_delete", filename="b.txt")
    assert answered["result"]["content"][0]["text"].startswith("delete of b.txt: ")
    tool_error = _node_client("ext_tasks_client.mjs", server, "failing_job")
    assert (tool_error["outcome"]["status"], tool_error["result"]["isError"]) == ("completed", True)
    failed = _node_client("ext_tasks_client.mjs", server, "protocol_error_job")
    assert failed["error"] == {
        "name": "TaskFailedError",
        "code": -32000,
        "message": "the upstream service refused the job",
    }
    await a_task_fits(server)
