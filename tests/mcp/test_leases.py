"""The lease fences a task's handler, and a finished task frees its slot of the per-owner cap.

Store-level checks on the memory backend with a hand-moved clock, and one in-process server
whose worker finds its lease lost while its handler waits.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from task_client import TERMINAL, VERSION, CreatedTask, TasksAd, TaskSession

from conformance.harness import ManualClock
from pmcp_tasks import (
    GenericTaskStore,
    InvalidTransition,
    LeaseLost,
    StoreConfig,
    TaskLimitExceeded,
    TaskStatus,
)
from pmcp_tasks.mcp import TasksExtension, current_task
from reference_backends.memory import InMemoryBackend

pytestmark = pytest.mark.anyio
RESULT = {"content": [], "isError": False, "resultType": "complete"}


def _store(clock: ManualClock, cap: int | None = None) -> GenericTaskStore:
    config = StoreConfig(max_tasks_per_owner=cap, poll_interval=0.05, allow_anonymous=True)
    return GenericTaskStore(InMemoryBackend(clock=clock), config, clock=clock)


async def test_only_the_holder_renews_or_writes_the_outcome() -> None:
    clock = ManualClock()
    store = _store(clock)
    task = await store.create("alice", worker="w1", lease=10)
    attempts: list[Any] = [
        store.renew_lease("alice", task.task_id, "w2", 10),
        store.complete("alice", task.task_id, RESULT, worker="w2"),
        store.fail("alice", task.task_id, "no", error={"code": -1, "message": "no"}, worker="w2"),
        store.request_input("alice", task.task_id, {"q": {"method": "roots/list"}}, worker="w2"),
        store.require_input("alice", task.task_id, worker="w2"),
    ]
    for attempt in attempts:
        with pytest.raises(LeaseLost) as lost:
            await attempt
        assert "'w1'" in lost.value.message
        assert "'w2'" in lost.value.message
    assert await store.get("alice", task.task_id) == task  # nothing was written
    done = await store.complete("alice", task.task_id, RESULT, worker="w1")
    assert done.status is TaskStatus.COMPLETED


async def test_a_worker_paused_past_its_lease_cannot_write_after_the_task_failed() -> None:
    clock = ManualClock()
    store = _store(clock)
    task = await store.create("alice", worker="w1", lease=10)
    clock.advance(11)
    lost = await store.get_checking_lease("alice", task.task_id)
    assert lost.status is TaskStatus.FAILED
    assert await store.renew_lease("alice", task.task_id, "w1", 10) == lost
    with pytest.raises(InvalidTransition):
        await store.complete("alice", task.task_id, RESULT, worker="w1")
    assert await store.get("alice", task.task_id) == lost


async def test_a_slow_worker_nobody_replaced_keeps_its_task() -> None:
    clock = ManualClock()
    store = _store(clock)
    task = await store.create("alice", worker="w1", lease=10)
    clock.advance(11)  # ran out, but no reader ended it and nobody took it over
    renewed = await store.renew_lease("alice", task.task_id, "w1", 10)
    assert renewed.status is TaskStatus.WORKING
    assert (await store.get_checking_lease("alice", task.task_id)).status is TaskStatus.WORKING


@pytest.mark.parametrize("end", ["complete", "fail", "cancel"])
async def test_a_finished_task_frees_its_slot_at_once(end: str) -> None:
    clock = ManualClock()
    store = _store(clock, cap=3)
    tasks = [await store.create("alice") for _ in range(3)]
    with pytest.raises(TaskLimitExceeded) as full:
        await store.create("alice")
    assert "as soon as it completes, fails or is cancelled" in full.value.message
    first = tasks[0].task_id
    if end == "complete":
        await store.complete("alice", first, RESULT)
    elif end == "fail":
        await store.fail("alice", first, "gave up")
    else:
        await store.request_cancel("alice", first)
    extra = await store.create("alice")  # no clock move: freed at once
    assert extra.status is TaskStatus.WORKING
    with pytest.raises(TaskLimitExceeded):
        await store.create("alice")
    listed, _ = await store.list("alice")
    unfinished = [t for t in listed if not t.status.is_terminal]
    assert len(unfinished) == 3


async def test_the_worker_cancels_a_handler_whose_task_another_instance_ended(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker cut off past its lease: another reader ended the task. Once the worker sees it,
    its handler is cancelled (not left to run on) and the log says so."""
    clock = ManualClock()
    store = _store(clock)
    tasks = TasksExtension(store, lease=10)
    server = MCPServer("leases", extensions=[tasks])
    waiting = asyncio.Event()
    stopped: list[BaseException] = []
    cancelled = asyncio.Event()

    @tasks.tool(server, support="required")
    async def hold() -> str:
        current_task()
        waiting.set()
        try:
            await asyncio.Event().wait()
        except BaseException as exc:
            stopped.append(exc)
            cancelled.set()
            raise
        return "never"

    client = Client(server, mode=VERSION, extensions=[TasksAd()], cache=None)
    async with client:
        session = TaskSession(client)
        created = await session.call("hold")
        assert isinstance(created, CreatedTask)
        await waiting.wait()
        clock.advance(11)
        with caplog.at_level(logging.WARNING, logger="pmcp_tasks.mcp"):
            ended = await session.wait_for(created.task_id, *TERMINAL)
            assert ended.field("status") == "failed"
            assert "was lost" in ended.field("error")["message"]
            await cancelled.wait()  # the watcher's next read sees the task ended
        await tasks.aclose()
    assert [type(exc) for exc in stopped] == [asyncio.CancelledError]
    assert any("this worker lost it" in record.getMessage() for record in caplog.records)
