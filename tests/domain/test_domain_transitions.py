"""The MCP task lifecycle: the full 5x5 matrix, the hints of refused moves, and results."""

from __future__ import annotations

import pytest

from pmcp_tasks import (
    TRANSITIONS,
    GenericTaskStore,
    InvalidTransition,
    ResultUnavailable,
    TaskRecord,
    TaskStatus,
    TaskValidationError,
)

pytestmark = pytest.mark.anyio

ALLOWED = {
    ("working", "input_required"),
    ("working", "completed"),
    ("working", "failed"),
    ("working", "cancelled"),
    ("input_required", "working"),
    ("input_required", "completed"),
    ("input_required", "failed"),
    ("input_required", "cancelled"),
}


async def task_in(store: GenericTaskStore, status: TaskStatus) -> TaskRecord:
    record = await store.create("alice")
    if status is TaskStatus.WORKING:
        return record
    if status is TaskStatus.INPUT_REQUIRED:
        return await store.require_input("alice", record.task_id, "need a date")
    if status is TaskStatus.COMPLETED:
        return await store.complete("alice", record.task_id, {"content": []})
    if status is TaskStatus.FAILED:
        return await store.fail("alice", record.task_id, "boom")
    return await store.cancel("alice", record.task_id)


def test_table_is_the_mcp_lifecycle() -> None:
    table = {(a.value, b.value) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == ALLOWED
    assert set(TRANSITIONS) == set(TaskStatus)


@pytest.mark.parametrize("target", list(TaskStatus), ids=lambda s: s.value)
@pytest.mark.parametrize("source", list(TaskStatus), ids=lambda s: s.value)
async def test_transition_matrix(
    store: GenericTaskStore, source: TaskStatus, target: TaskStatus
) -> None:
    record = await task_in(store, source)
    assert record.status is source
    if (source.value, target.value) in ALLOWED:
        updated = await store.update_status("alice", record.task_id, target, status_message="m")
        assert updated.status is target
        assert (await store.get("alice", record.task_id)).status is target
        return
    with pytest.raises(InvalidTransition) as raised:
        await store.update_status("alice", record.task_id, target.value)
    assert raised.value.code == -32602
    message = raised.value.message
    assert f"from {source.value} to {target.value}" in message
    if source.is_terminal:
        assert "final" in message
        assert "create a new task" in message
    elif source is TaskStatus.WORKING:
        assert "variables" in message
    else:
        assert "resume()" in message
    assert await store.get("alice", record.task_id) == record  # nothing written


async def test_unknown_status_is_a_validation_error(store: GenericTaskStore) -> None:
    record = await store.create("alice")
    with pytest.raises(TaskValidationError, match=r"unknown task status 'done'.*working"):
        await store.update_status("alice", record.task_id, "done")


async def test_status_message_replaced_and_cleared(store: GenericTaskStore) -> None:
    record = await store.create("alice", status_message="starting")
    waiting = await store.require_input("alice", record.task_id, "which file?")
    assert waiting.status_message == "which file?"
    resumed = await store.resume("alice", record.task_id)
    assert resumed.status_message is None


async def test_result_lifecycle(store: GenericTaskStore) -> None:
    record = await store.create("alice")
    with pytest.raises(ResultUnavailable, match="still working"):
        await store.get_result("alice", record.task_id)
    await store.complete("alice", record.task_id, None)
    assert await store.get_result("alice", record.task_id) is None  # a null result is a result


async def test_failed_and_cancelled_results(store: GenericTaskStore) -> None:
    failed = await store.fail("alice", (await store.create("alice")).task_id, "disk full")
    with pytest.raises(ResultUnavailable, match="failed without a result: disk full"):
        await store.get_result("alice", failed.task_id)
    error = {"isError": True, "content": [{"type": "text", "text": "nope"}]}
    with_result = await store.fail("alice", (await store.create("alice")).task_id, result=error)
    assert with_result.status is TaskStatus.FAILED
    assert await store.get_result("alice", with_result.task_id) == error
    cancelled = await store.cancel("alice", (await store.create("alice")).task_id)
    with pytest.raises(ResultUnavailable, match="cancelled without a result"):
        await store.get_result("alice", cancelled.task_id)


async def test_set_result_only_finishes(store: GenericTaskStore) -> None:
    record = await store.create("alice")
    with pytest.raises(TaskValidationError, match="completed or failed, not cancelled"):
        await store.set_result("alice", record.task_id, 1, status="cancelled")
    done = await store.set_result("alice", record.task_id, {"n": 1})
    assert done.status is TaskStatus.COMPLETED
    assert done.has_result
    with pytest.raises(InvalidTransition, match="completed is final"):
        await store.complete("alice", record.task_id, {"n": 2})
    assert await store.get_result("alice", record.task_id) == {"n": 1}


async def test_final_task_variables_are_frozen(store: GenericTaskStore) -> None:
    record = await store.create("alice", variables={"k": 1})
    await store.complete("alice", record.task_id, "ok")
    with pytest.raises(InvalidTransition, match="final status: its variables can no longer"):
        await store.set_variables("alice", record.task_id, {"k": 2})
