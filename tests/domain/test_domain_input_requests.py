"""Input requests as docs/domain.md states them, and the worker string bounded like any other.

Two answers used to contradict the docs: a malformed response under a key that is not
outstanding rejected the whole ``tasks/update`` (the docs: other keys are ignored), and after
``resume()`` a re-asked question could never bring the task back to ``working``, because the
abandoned request stayed outstanding.
"""

from __future__ import annotations

import pytest

from conformance.harness import ManualClock
from pmcp_tasks import GenericTaskStore, StoreConfig, TaskStatus, TaskValidationError
from reference_backends.memory import InMemoryBackend

pytestmark = pytest.mark.anyio

ASK = {"method": "elicitation/create", "params": {"message": "name?"}}


async def test_a_malformed_response_under_an_unknown_key_is_ignored(
    store: GenericTaskStore,
) -> None:
    task = await store.create("alice")
    _, keys = await store.request_input("alice", task.task_id, {"name": ASK})
    answer = {"action": "accept", "content": {"name": "Ada"}}
    record = await store.answer_input(
        "alice", task.task_id, {keys["name"]: answer, "unknown#9": 42, "other#1": [float("nan")]}
    )
    assert record.status is TaskStatus.WORKING
    assert record.input_responses == {keys["name"]: answer}


async def test_a_malformed_response_under_an_outstanding_key_is_refused(
    store: GenericTaskStore,
) -> None:
    task = await store.create("alice")
    before, keys = await store.request_input("alice", task.task_id, {"name": ASK})
    with pytest.raises(TaskValidationError, match="must be an object"):
        await store.answer_input("alice", task.task_id, {keys["name"]: 42})
    assert await store.get("alice", task.task_id) == before


async def test_after_resume_the_question_asked_again_is_the_only_one_outstanding(
    store: GenericTaskStore,
) -> None:
    task = await store.create("alice")
    _, first = await store.request_input("alice", task.task_id, {"name": ASK})
    resumed = await store.resume("alice", task.task_id)
    assert resumed.input_requests == {}
    asked, again = await store.request_input("alice", task.task_id, {"name": ASK})
    assert list(asked.input_requests) == [again["name"]] != [first["name"]]
    late = await store.answer_input("alice", task.task_id, {first["name"]: {"action": "accept"}})
    assert late == asked  # the abandoned key is unknown now: ignored, nothing written
    answered = await store.answer_input(
        "alice", task.task_id, {again["name"]: {"action": "accept"}}
    )
    assert answered.status is TaskStatus.WORKING


async def test_worker_is_bounded_by_max_string_bytes(store: GenericTaskStore) -> None:
    limit = store.config.max_string_bytes
    with pytest.raises(TaskValidationError, match=f"worker is a string of {limit + 1} bytes"):
        await store.create("alice", worker="w" * (limit + 1), lease=60)
    task = await store.create("alice", worker="w" * limit, lease=60)
    with pytest.raises(TaskValidationError, match="worker"):
        await store.renew_lease("alice", task.task_id, "w" * 20_000_000, 60)
    assert (await store.get("alice", task.task_id)).worker == "w" * limit


async def test_a_smaller_max_string_bytes_bounds_the_worker_too(
    backend: InMemoryBackend, clock: ManualClock
) -> None:
    store = GenericTaskStore(backend, StoreConfig(max_string_bytes=8), clock)
    with pytest.raises(TaskValidationError, match="worker is a string of 9 bytes"):
        await store.create("alice", worker="w" * 9, lease=60)
    assert (await store.list("alice"))[0] == []
