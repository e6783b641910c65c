"""The binding through the MCP Python SDK's own client over streamable HTTP, against the
example server in its own process (memory store, bearer tokens for two owners)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from example_server import RunningServer, example_server
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult
from task_client import TERMINAL, CreatedTask, MisroutedGet, TaskParams, TaskSession, connect

from pmcp_tasks.mcp import EXTENSION_ID, HEADER_MISMATCH, MISSING_REQUIRED_CLIENT_CAPABILITY

ALICE, BOB = "token-alice", "token-bob"
ACCEPT = {"action": "accept", "content": {"confirm": True}}
pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tokens = ["--token", f"{ALICE}=alice", "--token", f"{BOB}=bob"]
    log_dir = tmp_path_factory.mktemp("mcp-client")
    with example_server(log_dir, ["--poll-interval", "0.1", *tokens]) as running:
        yield running
    assert "Traceback" not in running.output(), running.output()


async def _task(session: TaskSession, tool: str, arguments: dict[str, Any]) -> CreatedTask:
    created = await session.call(tool, arguments)
    assert isinstance(created, CreatedTask), created
    return created


async def _error(call: Any) -> MCPError:
    with pytest.raises(MCPError) as caught:
        await call
    return caught.value


async def test_lifecycle(server: RunningServer) -> None:
    async with connect(server.url, token=ALICE) as session:
        created = await _task(session, "slow_compute", {"seconds": 0.3, "label": "sum"})
        assert created.status == "working"
        extra = created.model_extra or {}
        assert extra["ttlMs"] == 3_600_000
        assert extra["pollIntervalMs"] == 100
        # durable before the handle was sent: readable by the very next request
        first = await session.get(created.task_id)
        assert first.field("taskId") == created.task_id
        done = await session.wait_for(created.task_id, *TERMINAL)
        assert done.field("status") == "completed"
        result = CallToolResult.model_validate(done.field("result"))
        assert result.content[0].text == "computed sum after 0.3 s"  # type: ignore[union-attr]
        assert done.field("error") is None


async def test_input_round_trip_with_partial_answers(server: RunningServer) -> None:
    async with connect(server.url, token=ALICE) as session:
        created = await _task(session, "multi_input", {})
        waiting = await session.wait_for(created.task_id, "input_required")
        asked: dict[str, Any] = waiting.field("inputRequests")
        assert len(asked) == 2
        first, second = sorted(asked)
        assert asked[first]["method"] == "elicitation/create"
        ack = await session.update(created.task_id, {first: ACCEPT, "no-such-key": ACCEPT})
        assert set(ack.model_dump(by_alias=True, exclude_none=True)) <= {"resultType", "_meta"}
        partial = await session.get(created.task_id)
        assert partial.field("status") == "input_required"
        assert list(partial.field("inputRequests")) == [second]
        await session.update(created.task_id, {second: ACCEPT})
        done = await session.wait_for(created.task_id, *TERMINAL)
        assert done.field("status") == "completed"
        assert "['confirm', 'name']" in json.dumps(done.field("result"))


async def test_cancel_while_running(server: RunningServer) -> None:
    async with connect(server.url, token=ALICE) as session:
        created = await _task(session, "slow_compute", {"seconds": 60})
        ack = await session.cancel(created.task_id)
        assert ack.field("status") is None
        assert ack.field("taskId") is None
        view = await session.get(created.task_id)
        assert view.field("status") == "cancelled"
        assert view.field("result") is None


async def test_cancel_after_completion_is_an_empty_ack(server: RunningServer) -> None:
    async with connect(server.url, token=ALICE) as session:
        created = await _task(session, "slow_compute", {"seconds": 0.1})
        done = await session.wait_for(created.task_id, *TERMINAL)
        assert done.field("status") == "completed"
        ack = await session.cancel(created.task_id)
        assert ack.model_dump(by_alias=True, exclude_none=True)["resultType"] == "complete"
        again = await session.get(created.task_id)
        assert (again.field("status"), again.field("result")) == ("completed", done.field("result"))


async def test_gating_without_the_extension(server: RunningServer) -> None:
    async with connect(server.url, token=ALICE, declare=False) as session:
        plain = await session.call("slow_compute", {"seconds": 0})
        assert isinstance(plain, CallToolResult)
        assert plain.content[0].text == "computed result after 0 s"  # type: ignore[union-attr]
        for call in (session.call("failing_job"), session.get("gate-test")):
            error = await _error(call)
            assert error.code == MISSING_REQUIRED_CLIENT_CAPABILITY
            assert error.error.data == {"requiredCapabilities": {"extensions": {EXTENSION_ID: {}}}}


async def test_per_request_opt_in(server: RunningServer) -> None:
    """The SDK client stamps its own capabilities, so this request is posted as raw JSON-RPC."""

    def body(capabilities: dict[str, Any]) -> dict[str, Any]:
        meta = {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": capabilities,
        }
        params = {"name": "slow_compute", "arguments": {"seconds": 0}, "_meta": meta}
        return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}

    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "slow_compute",
        "Authorization": f"Bearer {ALICE}",
    }
    async with httpx2.AsyncClient(timeout=30) as http:
        answers = [
            (await http.post(server.url, json=body(caps), headers=headers)).json()["result"]
            for caps in ({}, {"extensions": {EXTENSION_ID: {}}})
        ]
    assert answers[0]["resultType"] == "complete"
    assert "taskId" not in answers[0]
    assert answers[1]["resultType"] == "task"
    async with connect(server.url, token=ALICE) as session:
        assert (await session.get(answers[1]["taskId"])).field("taskId") == answers[1]["taskId"]


async def test_mcp_name_header_must_match_the_task(server: RunningServer) -> None:
    async with connect(server.url, token=ALICE) as session:
        created = await _task(session, "slow_compute", {"seconds": 0.1})
        params = TaskParams(task_id=created.task_id, route="some-other-task")
        error = await _error(session.send(MisroutedGet(method="tasks/get", params=params)))
        assert error.code == HEADER_MISMATCH
        assert "some-other-task" in error.message


async def test_another_owners_task_answers_like_an_unknown_one(server: RunningServer) -> None:
    async with connect(server.url, token=ALICE) as alice:
        created = await _task(alice, "slow_compute", {"seconds": 60})
        other = await _task(alice, "slow_compute", {"seconds": 0})
        await alice.wait_for(other.task_id, *TERMINAL)
        # a well-formed id nobody owns: alice's finished task, seen by bob
        async with connect(server.url, token=BOB) as bob:
            for call in (
                bob.get(created.task_id),
                bob.cancel(created.task_id),
                bob.update(created.task_id, {"k": ACCEPT}),
            ):
                error = await _error(call)
                assert (error.code, error.message) == (
                    -32602,
                    f"task not found: {created.task_id!r}",
                )
            unknown = await _error(bob.get("01" + "0" * 46))
            assert unknown.code == -32602
            assert unknown.message == "task not found: " + repr("01" + "0" * 46)
        still = await alice.get(created.task_id)
        assert still.field("status") == "working"
        await alice.cancel(created.task_id)


async def test_malformed_params_are_a_clear_invalid_params(server: RunningServer) -> None:
    async with connect(server.url, token=ALICE) as session:
        created = await _task(session, "confirm_delete", {"filename": "f"})
        waiting = await session.wait_for(created.task_id, "input_required")
        key = next(iter(waiting.field("inputRequests")))

        def get(task_id: object) -> Any:
            # The SDK refuses to send a non-string taskId as Mcp-Name: route by another field.
            params = TaskParams(task_id=task_id, route="malformed")
            return session.send(MisroutedGet(method="tasks/get", params=params))

        cases = [
            (get(5), "params.taskId, a string; got int 5"),
            (get(None), "params.taskId, a string; got nothing"),
            (session.update(created.task_id, "yes"), "inputResponses, an object"),
            (
                session.update(created.task_id, {key: 5}),
                f"input_responses[{key!r}] must be an object",
            ),
        ]
        for call, expected in cases:
            error = await _error(call)
            assert error.code == -32602, error.message
            assert expected in error.message
        assert (await session.get(created.task_id)).field("status") == "input_required"
        await session.cancel(created.task_id)


def test_server_log_has_no_traceback(server: RunningServer) -> None:
    assert "Traceback" not in server.output()


async def test_the_example_server_caps_each_owner_and_a_cancel_frees_a_slot(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Anonymous clients share one owner under the default cap (100 unfinished tasks)."""
    with example_server(tmp_path_factory.mktemp("cap")) as capped:
        async with connect(capped.url) as session:
            held = [await _task(session, "slow_compute", {"seconds": 600}) for _ in range(100)]
            refused = await _error(session.call("slow_compute", {"seconds": 600}))
            assert refused.code == -32602
            assert "100 unfinished tasks" in refused.message
            assert "as soon as it completes, fails or is cancelled" in refused.message
            await session.cancel(held[0].task_id)
            held.append(await _task(session, "slow_compute", {"seconds": 600}))
            for task in held[1:]:
                await session.cancel(task.task_id)
