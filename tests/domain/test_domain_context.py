"""``TaskContext`` for handlers of the tasks extension: cooperative cancellation and waiting for
input that another party (``tasks/update`` through any instance) delivers to the store."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from conformance.harness import ManualClock
from pmcp_tasks import GenericTaskStore, StoreConfig, TaskCancelled, TaskContext, TaskStatus
from reference_backends.memory import InMemoryBackend

ELICIT = {"method": "elicitation/create", "params": {"message": "ok?", "requestedSchema": {}}}
pytestmark = pytest.mark.anyio


@pytest.fixture
def fast(clock: ManualClock, backend: InMemoryBackend) -> GenericTaskStore:
    """Input waits read the store every 10 ms."""
    return GenericTaskStore(backend, StoreConfig(poll_interval=0.01), clock)


async def _until(store: GenericTaskStore, task_id: str, status: TaskStatus) -> dict[str, object]:
    """Let the handler run until the stored task reaches ``status``."""
    for _ in itertools.count():
        record = await store.get("alice", task_id)
        if record.status is status:
            break
        await asyncio.sleep(0)
    return record.input_requests


async def test_request_input_returns_the_answers_by_name(fast: GenericTaskStore) -> None:
    task = TaskContext(fast, "alice", (await fast.create("alice")).task_id)
    waiting = asyncio.ensure_future(task.request_input({"first": ELICIT, "second": ELICIT}))
    asked = await _until(fast, task.task_id, TaskStatus.INPUT_REQUIRED)
    keys = sorted(asked)
    await fast.answer_input("alice", task.task_id, {keys[0]: {"action": "accept"}})
    assert not waiting.done()
    await fast.answer_input("alice", task.task_id, {keys[1]: {"action": "decline"}})
    answers = await waiting
    assert answers == {"first": {"action": "accept"}, "second": {"action": "decline"}}
    stored = await fast.get("alice", task.task_id)
    assert (stored.status, stored.input_requests, stored.input_responses) == (
        TaskStatus.WORKING,
        {},
        {},
    )


async def test_cancel_during_an_input_wait_raises_in_the_handler(fast: GenericTaskStore) -> None:
    task = TaskContext(fast, "alice", (await fast.create("alice")).task_id)
    waiting = asyncio.ensure_future(task.request_input({"q": ELICIT}))
    await _until(fast, task.task_id, TaskStatus.INPUT_REQUIRED)
    await fast.request_cancel("alice", task.task_id)
    with pytest.raises(TaskCancelled):
        await waiting
    assert task.cancelled


async def test_after_mark_cancelled_every_call_raises(store: GenericTaskStore) -> None:
    task = TaskContext(store, "alice", (await store.create("alice")).task_id)
    assert not task.cancelled
    sleeper = asyncio.ensure_future(task.sleep(3600))
    await asyncio.sleep(0)
    task.mark_cancelled()
    with pytest.raises(TaskCancelled, match=task.task_id):
        await sleeper
    await task.wait_cancelled()
    for call in (task.get(), task.set_variable("x", 1), task.complete("done"), task.fail("no")):
        with pytest.raises(TaskCancelled):
            await call
    assert (await store.get("alice", task.task_id)).status is TaskStatus.WORKING


async def test_a_write_refused_because_of_a_cancel_is_task_cancelled(
    store: GenericTaskStore,
) -> None:
    task = TaskContext(store, "alice", (await store.create("alice")).task_id)
    await store.request_cancel("alice", task.task_id)
    with pytest.raises(TaskCancelled):
        await task.complete({"content": []})
    assert task.cancelled
    assert (await store.get("alice", task.task_id)).status is TaskStatus.CANCELLED


async def test_fail_with_a_jsonrpc_error(store: GenericTaskStore) -> None:
    task = TaskContext(store, "alice", (await store.create("alice")).task_id)
    failed = await task.fail("refused", error={"code": -32000, "message": "refused"})
    assert failed.to_detailed_task()["error"] == {"code": -32000, "message": "refused"}
