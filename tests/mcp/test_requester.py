"""``pmcp_tasks.mcp.client.TaskRequester`` against the example server in its own process: the
README's example verbatim, input through the callback, a failed task's error, and a cancel."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from example_server import RunningServer, example_server
from mcp import Client
from mcp.shared.exceptions import MCPError
from task_client import TERMINAL, connect

from pmcp_tasks.mcp.client import TaskRequester

pytestmark = pytest.mark.anyio
README = Path(__file__).parents[2] / "README.md"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with example_server(tmp_path_factory.mktemp("requester"), ["--poll-interval", "0.1"]) as up:
        yield up
    assert "Traceback" not in up.output(), up.output()


def _readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    found = [block for block in blocks if "TaskRequester" in block]
    assert len(found) == 1, "README.md should show one TaskRequester example"
    return str(found[0])


async def test_the_readme_example_runs_verbatim(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every line of it; only its ``asyncio.run(main())`` becomes an await here (the test
    already runs in an event loop), with the test server's URL."""
    code = _readme_example()
    body, run = code.rstrip().rsplit("\n", 1)
    assert run == "asyncio.run(main())"
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 10, "the README promises ten lines"
    namespace: dict[str, Any] = {}
    exec(compile(body, str(README), "exec"), namespace)
    await namespace["main"](server.url)
    assert (
        capsys.readouterr().out
        == "delete of a.txt: {'action': 'accept', 'content': {'confirm': True}}\n"
    )


async def test_every_input_request_goes_to_the_callback_once(server: RunningServer) -> None:
    asked: list[tuple[str, str]] = []

    async def answer(key: str, request: dict[str, Any]) -> dict[str, Any]:
        asked.append((key.split("#")[0], request["params"]["message"]))
        field = key.split("#")[0]
        return {"action": "accept", "content": {field: "Ada" if field == "name" else True}}

    requester = TaskRequester(on_input=answer)
    async with Client(server.url, mode="2026-07-28", extensions=[requester], cache=None) as client:
        result = await client.call_tool("multi_input", {})
        plain = await client.call_tool("slow_compute", {"seconds": 0.2, "label": "x"})
    assert result.content[0].text == "got ['confirm', 'name']"  # type: ignore[union-attr]
    assert sorted(asked) == [("confirm", "Go ahead?"), ("name", "Your name?")]
    assert plain.content[0].text == "computed x after 0.2 s"  # type: ignore[union-attr]


async def test_a_failed_task_raises_its_json_rpc_error(server: RunningServer) -> None:
    async with Client(
        server.url, mode="2026-07-28", extensions=[TaskRequester()], cache=None
    ) as client:
        with pytest.raises(MCPError) as failed:
            await client.call_tool("protocol_error_job", {})
        tool_error = await client.call_tool("failing_job", {})
    assert (failed.value.code, failed.value.message) == (
        -32000,
        "the upstream service refused the job",
    )
    assert tool_error.is_error is True


async def test_cancelling_the_call_cancels_the_task(server: RunningServer) -> None:
    created: asyncio.Queue[str] = asyncio.Queue()
    requester = TaskRequester(on_created=created.put)
    async with Client(server.url, mode="2026-07-28", extensions=[requester], cache=None) as client:
        call = asyncio.ensure_future(client.call_tool("slow_compute", {"seconds": 600}))
        task_id = await created.get()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    async with connect(server.url) as observer:
        ended = await observer.wait_for(task_id, *TERMINAL)
    assert ended.field("status") == "cancelled"
