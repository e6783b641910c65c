"""Read -> validate -> CAS under contention: no lost update, bounded retries, honest errors."""

from __future__ import annotations

import asyncio
import random

import pytest
from domain_support import YieldingBackend

from conformance.harness import ManualClock
from pmcp_tasks import (
    BackendError,
    ConcurrentModification,
    GenericTaskStore,
    InvalidTransition,
    StorageFailure,
    StoreConfig,
    TaskStatus,
    VersionedRecord,
)
from reference_backends.memory import InMemoryBackend

pytestmark = pytest.mark.anyio


class NetworkLikeBackend(InMemoryBackend):
    """Every call waits 0-1 ms, like a round trip to a server on the same host."""

    async def get(self, key: str) -> VersionedRecord | None:
        await asyncio.sleep(random.uniform(0, 0.001))
        return await super().get(key)

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        await asyncio.sleep(random.uniform(0, 0.001))
        return await super().put_if_version(key, data, expected_version, expires_at=expires_at)


@pytest.mark.parametrize("backend_class", [YieldingBackend, NetworkLikeBackend])
async def test_200_concurrent_set_variables_lose_nothing(
    clock: ManualClock, backend_class: type[InMemoryBackend]
) -> None:
    store = GenericTaskStore(backend_class(clock=clock), clock=clock)
    record = await store.create("alice", variables={"base": 0})
    await asyncio.gather(
        *(store.set_variables("alice", record.task_id, {f"k{i}": i}) for i in range(200))
    )
    variables = (await store.get("alice", record.task_id)).variables
    assert variables == {"base": 0, **{f"k{i}": i for i in range(200)}}


async def test_conflicts_really_happen(clock: ManualClock) -> None:
    """Guards the test above: with the yielding backend, writers do collide and retry."""
    backend = YieldingBackend(clock=clock)
    conflicts = 0
    original = backend.put_if_version

    async def counting(key: str, data: bytes, expected: int, **kw: float | None) -> int:
        nonlocal conflicts
        try:
            return await original(key, data, expected, **kw)
        except Exception:
            conflicts += 1
            raise

    backend.put_if_version = counting  # type: ignore[method-assign,assignment]
    store = GenericTaskStore(backend, clock=clock)
    record = await store.create("alice")
    await asyncio.gather(
        *(store.set_variables("alice", record.task_id, {f"k{i}": i}) for i in range(20))
    )
    assert conflicts > 0
    assert len((await store.get("alice", record.task_id)).variables) == 20


class AlwaysRacedBackend(InMemoryBackend):
    """Someone else writes between every read and CAS of a task."""

    async def get(self, key: str) -> VersionedRecord | None:
        record = await super().get(key)
        if record is not None:
            await super().put(key, record.data, expires_at=record.expires_at)
        return record


async def test_bounded_retries_then_concurrent_modification(clock: ManualClock) -> None:
    backend = AlwaysRacedBackend(clock=clock)
    config = StoreConfig(max_tasks_per_owner=None, cas_attempts=5, cas_backoff=0)
    store = GenericTaskStore(backend, config, clock)
    record = await store.create("alice")
    with pytest.raises(ConcurrentModification) as raised:
        await store.set_variables("alice", record.task_id, {"a": 1})
    error = raised.value
    assert error.code == -32603
    assert error.actual == error.expected + 1
    assert error.expected == 5  # exactly cas_attempts tries: it read versions 1, 2, .., 5
    assert "retry the request" in error.message


async def test_retry_revalidates(clock: ManualClock) -> None:
    """A writer that loses to a cancel re-reads, sees the final status, and refuses."""
    store = GenericTaskStore(YieldingBackend(clock=clock), clock=clock)
    record = await store.create("alice")
    results = await asyncio.gather(
        store.cancel("alice", record.task_id),
        store.complete("alice", record.task_id, "r"),
        return_exceptions=True,
    )
    assert sum(isinstance(r, InvalidTransition) for r in results) == 1
    final = await store.get("alice", record.task_id)
    assert final.status in (TaskStatus.CANCELLED, TaskStatus.COMPLETED)


class BrokenBackend(InMemoryBackend):
    async def get(self, key: str) -> VersionedRecord | None:
        try:
            raise ConnectionError("server went away")
        except ConnectionError as exc:
            raise BackendError("get failed") from exc

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        raise BackendError("list failed")

    async def cleanup_expired(self) -> int:
        raise BackendError("cleanup failed")

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        raise BackendError("put failed")


async def test_storage_errors_surface_as_storage_failure(clock: ManualClock) -> None:
    store = GenericTaskStore(BrokenBackend(clock=clock), clock=clock)
    calls = [
        store.create("alice"),
        store.get("alice", "0" * 48),
        store.set_variables("alice", "0" * 48, {"a": 1}),
        store.list("alice"),
        store.cleanup_expired(),
    ]
    for call in calls:
        with pytest.raises(StorageFailure, match="storage failed while") as raised:
            await call
        assert raised.value.code == -32603
        assert isinstance(raised.value.__cause__, BackendError)
