"""The 2026-07-28 tasks-extension fields of the domain (DOM-INPUT/ERROR/CANCEL/LEASE/WIRE-*).

Input requests and responses, the stored JSON-RPC error and the worker lease all live in the
task record and change through ``put_if_version``, so a backend that loses or reorders writes
under contention, or mangles a nested document, breaks these rules even when each KV clause
holds one call at a time.
"""

from __future__ import annotations

import asyncio

import pytest

from conformance.contract.domain import DomainContract
from conformance.harness import ManualClock
from pmcp_tasks.backend import StorageBackend
from pmcp_tasks.config import StoreConfig
from pmcp_tasks.errors import InvalidTransition, TaskValidationError
from pmcp_tasks.status import TaskStatus
from pmcp_tasks.store import GenericTaskStore

ELICIT = {
    "method": "elicitation/create",
    "params": {
        "message": "Delete the file?",
        "requestedSchema": {"type": "object", "properties": {"confirm": {"type": "boolean"}}},
    },
}
ACCEPT = {"action": "accept", "content": {"confirm": True}}


class DomainInputsContract:
    """GenericTaskStore's tasks-extension fields over the backend under test."""

    pytestmark = pytest.mark.anyio

    task_store = DomainContract.task_store

    @pytest.mark.pmcp_clause("DOM-INPUT-1")
    async def test_partial_answers_keep_the_rest_outstanding(
        self, task_store: GenericTaskStore
    ) -> None:
        task = await task_store.create("alice")
        tid = task.task_id
        asked, keys = await task_store.request_input(
            "alice", tid, {"first": ELICIT, "second": ELICIT}, "two questions"
        )
        assert asked.status is TaskStatus.INPUT_REQUIRED
        assert set(asked.input_requests) == set(keys.values())
        one = await task_store.answer_input(
            "alice", tid, {keys["first"]: ACCEPT, "never-asked": {"x": 1}}
        )
        assert one.status is TaskStatus.INPUT_REQUIRED
        assert list(one.input_requests) == [keys["second"]]
        assert one.input_responses == {keys["first"]: ACCEPT}
        both = await task_store.answer_input("alice", tid, {keys["second"]: ACCEPT})
        assert (both.status, both.input_requests) == (TaskStatus.WORKING, {})
        stored = await task_store.get("alice", tid)
        assert stored.input_responses == {keys["first"]: ACCEPT, keys["second"]: ACCEPT}
        _, taken = await task_store.take_input_responses("alice", tid, [keys["first"]])
        assert taken == {keys["first"]: ACCEPT}
        assert (await task_store.get("alice", tid)).input_responses == {keys["second"]: ACCEPT}

    @pytest.mark.pmcp_clause("DOM-INPUT-1")
    async def test_input_keys_are_never_reused(self, task_store: GenericTaskStore) -> None:
        tid = (await task_store.create("alice")).task_id
        seen: set[str] = set()
        for _ in range(3):
            _, keys = await task_store.request_input("alice", tid, {"q": ELICIT})
            assert not seen & set(keys.values())
            seen |= set(keys.values())
            await task_store.answer_input("alice", tid, dict.fromkeys(keys.values(), ACCEPT))
            # an answer to an old key is ignored, not delivered twice
            again = await task_store.answer_input("alice", tid, dict.fromkeys(seen, ACCEPT))
            assert again.status is TaskStatus.WORKING

    @pytest.mark.pmcp_clause("DOM-INPUT-1")
    async def test_concurrent_answers_lose_none(self, task_store: GenericTaskStore) -> None:
        tid = (await task_store.create("alice")).task_id
        names = {f"q{i}": ELICIT for i in range(8)}
        _, keys = await task_store.request_input("alice", tid, names)
        await asyncio.gather(
            *(task_store.answer_input("alice", tid, {key: ACCEPT}) for key in keys.values())
        )
        stored = await task_store.get("alice", tid)
        assert (stored.status, stored.input_requests) == (TaskStatus.WORKING, {})
        assert set(stored.input_responses) == set(keys.values())

    @pytest.mark.pmcp_clause("DOM-INPUT-2")
    async def test_malformed_input_is_refused_and_writes_nothing(
        self, task_store: GenericTaskStore
    ) -> None:
        tid = (await task_store.create("alice")).task_id
        malformed: list[object] = [{}, {"q": {"params": {}}}, {"q": 3}, [ELICIT]]
        for requests in malformed:
            with pytest.raises(TaskValidationError):
                await task_store.request_input("alice", tid, requests)  # type: ignore[arg-type]
        _, keys = await task_store.request_input("alice", tid, {"q": ELICIT})
        for responses in ({keys["q"]: None}, {keys["q"]: 5}, "accept"):
            with pytest.raises(TaskValidationError):
                await task_store.answer_input("alice", tid, responses)  # type: ignore[arg-type]
        stored = await task_store.get("alice", tid)
        assert (stored.status, list(stored.input_requests)) == (
            TaskStatus.INPUT_REQUIRED,
            [keys["q"]],
        )

    @pytest.mark.pmcp_clause("DOM-INPUT-2")
    async def test_input_size_limit(self, backend: StorageBackend, clock: ManualClock) -> None:
        store = GenericTaskStore(
            backend, StoreConfig(max_input_bytes=2048, max_tasks_per_owner=None), clock=clock
        )
        tid = (await store.create("alice")).task_id
        big = {"method": "elicitation/create", "params": {"message": "x" * 4096}}
        with pytest.raises(TaskValidationError, match="2048"):
            await store.request_input("alice", tid, {"q": big})
        assert (await store.get("alice", tid)).status is TaskStatus.WORKING

    @pytest.mark.pmcp_clause("DOM-ERROR-1")
    async def test_failed_task_keeps_its_jsonrpc_error(self, task_store: GenericTaskStore) -> None:
        tid = (await task_store.create("alice")).task_id
        await task_store.request_input("alice", tid, {"q": ELICIT})
        error = {"code": -32000, "message": "upstream refused", "data": {"retry": [1, 2]}}
        failed = await task_store.fail("alice", tid, "upstream refused", error=error)
        stored = await task_store.get("alice", tid)
        assert stored == failed
        assert (stored.status, stored.error, stored.input_requests) == (
            TaskStatus.FAILED,
            error,
            {},
        )
        detailed = stored.to_detailed_task()
        assert detailed["error"] == error
        assert "result" not in detailed
        other = (await task_store.create("alice")).task_id
        malformed: list[dict[str, object]] = [
            {"code": "x", "message": "m"},
            {"code": 1},
            {"code": 1, "message": "m", "z": 0},
        ]
        for bad in malformed:
            with pytest.raises(TaskValidationError):
                await task_store.fail("alice", other, error=bad)
        assert (await task_store.get("alice", other)).status is TaskStatus.WORKING

    @pytest.mark.pmcp_clause("DOM-CANCEL-1")
    async def test_cancel_request_is_a_no_op_on_a_final_task(
        self, task_store: GenericTaskStore
    ) -> None:
        done = await task_store.complete("alice", (await task_store.create("alice")).task_id, 1)
        again = await task_store.request_cancel("alice", done.task_id)
        assert again == done
        assert await task_store.get("alice", done.task_id) == done
        live = (await task_store.create("alice")).task_id
        await task_store.request_input("alice", live, {"q": ELICIT})
        cancelled = await task_store.request_cancel("alice", live, "user gave up")
        assert (cancelled.status, cancelled.input_requests) == (TaskStatus.CANCELLED, {})
        assert await task_store.request_cancel("alice", live) == cancelled
        with pytest.raises(InvalidTransition):
            await task_store.cancel("alice", live)

    @pytest.mark.pmcp_clause("DOM-LEASE-1")
    async def test_lost_worker_fails_the_task_after_its_lease(
        self, backend: StorageBackend, clock: ManualClock
    ) -> None:
        store = GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=None), clock=clock)
        task = await store.create("alice", worker="w1", lease=10)
        clock.advance(8)
        renewed = await store.renew_lease("alice", task.task_id, "w1", 10)
        assert renewed.updated_at_ms == task.updated_at_ms
        clock.advance(8)
        alive = await store.get_checking_lease("alice", task.task_id)
        assert alive.status is TaskStatus.WORKING
        clock.advance(3)
        lost = await store.get_checking_lease("alice", task.task_id)
        assert lost.status is TaskStatus.FAILED
        assert lost.error is not None
        assert "w1" in str(lost.error["message"])
        assert "lost" in str(lost.error["message"])
        assert await store.get("alice", task.task_id) == lost
        assert await store.renew_lease("alice", task.task_id, "w1", 10) == lost

    @pytest.mark.pmcp_clause("DOM-WIRE-1")
    async def test_extension_wire_names(self, backend: StorageBackend, clock: ManualClock) -> None:
        store = GenericTaskStore(
            backend, StoreConfig(poll_interval=0.25, max_tasks_per_owner=None), clock=clock
        )
        task = await store.create("alice", ttl=60)
        wire = task.to_task()
        assert (wire["ttlMs"], wire["pollIntervalMs"]) == (60_000, 250)
        assert "ttl" not in wire
        assert "pollInterval" not in wire
        legacy = task.to_wire()
        assert (legacy["ttl"], legacy["pollInterval"]) == (60_000, 250)
        _, keys = await store.request_input("alice", task.task_id, {"q": ELICIT})
        waiting = (await store.get("alice", task.task_id)).to_detailed_task()
        assert waiting["inputRequests"] == {keys["q"]: ELICIT}
        result = {"content": [{"type": "text", "text": "ok"}], "isError": False}
        await store.answer_input("alice", task.task_id, {keys["q"]: ACCEPT})
        await store.complete("alice", task.task_id, result)
        detailed = (await store.get("alice", task.task_id)).to_detailed_task()
        assert detailed["result"] == result
        assert "inputRequests" not in detailed
