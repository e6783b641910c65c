"""Per-owner cap on live tasks: enforced, per owner, freed by expiry, and race-proof."""

from __future__ import annotations

import asyncio

import pytest
from domain_support import YieldingBackend

from conformance.harness import ManualClock
from pmcp_tasks import (
    BackendError,
    GenericTaskStore,
    StorageFailure,
    StoreConfig,
    TaskLimitExceeded,
    TaskNotFound,
    partition_prefix,
)
from pmcp_tasks.store import QUOTA_ITEM, RESERVATION_GRACE
from reference_backends.memory import InMemoryBackend, MemoryStore

pytestmark = pytest.mark.anyio

CAP3 = StoreConfig(max_tasks_per_owner=3)


async def test_default_cap_is_100(store: GenericTaskStore) -> None:
    await asyncio.gather(*(store.create("alice") for _ in range(100)))
    with pytest.raises(TaskLimitExceeded, match="already has 100 live tasks") as raised:
        await store.create("alice")
    assert raised.value.code == -32602
    assert (await store.create("bob")).owner == "bob"  # the cap is per owner
    tasks, _ = await store.list("alice", limit=1000)
    assert len(tasks) == 100


async def test_cap_counts_live_not_finished(clock: ManualClock) -> None:
    store = GenericTaskStore(InMemoryBackend(clock=clock), CAP3, clock)
    ids = [(await store.create("alice", ttl=60)).task_id for _ in range(3)]
    await store.complete("alice", ids[0], "done")  # finished tasks still hold their slot
    with pytest.raises(TaskLimitExceeded):
        await store.create("alice")
    clock.advance(60)  # expired tasks free it
    fresh = [await store.create("alice") for _ in range(3)]
    assert len(fresh) == 3
    with pytest.raises(TaskLimitExceeded):
        await store.create("alice")


async def test_cap_freed_after_cleanup(clock: ManualClock, backend: InMemoryBackend) -> None:
    store = GenericTaskStore(backend, CAP3, clock)
    for _ in range(3):
        await store.create("alice", ttl=10)
    clock.advance(10)
    removed = await store.cleanup_expired()
    assert removed == 4  # three tasks and the quota record
    assert await backend.list_by_prefix(partition_prefix("alice")) == []
    for _ in range(3):
        await store.create("alice")


async def test_quota_record_is_unreachable_and_unlisted(
    clock: ManualClock, backend: InMemoryBackend
) -> None:
    store = GenericTaskStore(backend, CAP3, clock)
    record = await store.create("alice")
    assert await backend.get(partition_prefix("alice") + QUOTA_ITEM) is not None
    with pytest.raises(TaskNotFound):
        await store.get("alice", QUOTA_ITEM)
    tasks, cursor = await store.list("alice", limit=1)
    assert [t.task_id for t in tasks] == [record.task_id]
    assert cursor is None


@pytest.mark.parametrize("two_clients", [False, True], ids=["one-client", "two-clients"])
async def test_concurrent_creates_at_cap_minus_one(
    clock: ManualClock, memory: MemoryStore, two_clients: bool
) -> None:
    """Twenty creates race for the last slot: exactly one wins, over one or two clients."""
    cap = 10
    config = StoreConfig(max_tasks_per_owner=cap)
    stores = [
        GenericTaskStore(YieldingBackend(clock=clock, store=memory), config, clock)
        for _ in range(2 if two_clients else 1)
    ]
    for _ in range(cap - 1):
        await stores[0].create("alice")
    results = await asyncio.gather(
        *(stores[i % len(stores)].create("alice") for i in range(20)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, TaskLimitExceeded) for r in losers)
    tasks, _ = await stores[-1].list("alice")
    assert len(tasks) == cap


class FailingTaskWrites(InMemoryBackend):
    """Accepts quota writes but fails every task write, like a storage outage mid-create."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        if not key.endswith(QUOTA_ITEM):
            raise BackendError("connection reset")
        return await super().put_if_version(key, data, expected_version, expires_at=expires_at)


async def test_failed_create_releases_its_slot(clock: ManualClock, memory: MemoryStore) -> None:
    failing = GenericTaskStore(FailingTaskWrites(clock=clock, store=memory), CAP3, clock)
    for _ in range(5):
        with pytest.raises(StorageFailure, match="connection reset") as raised:
            await failing.create("alice")
        assert isinstance(raised.value.__cause__, BackendError)
        assert raised.value.code == -32603
    healthy = GenericTaskStore(InMemoryBackend(clock=clock, store=memory), CAP3, clock)
    for _ in range(3):
        await healthy.create("alice")


async def test_slot_of_a_task_never_written_is_reclaimed(
    clock: ManualClock, backend: InMemoryBackend
) -> None:
    """A crash between reserving and writing leaves a slot; after the grace period it is freed."""
    store = GenericTaskStore(backend, CAP3, clock)
    await store.create("alice")
    await store.create("alice")
    ghost = await store.create("alice")
    assert await backend.delete(partition_prefix("alice") + ghost.task_id)  # as if never written
    with pytest.raises(TaskLimitExceeded):
        await store.create("alice")  # too young to be called a ghost
    clock.advance(RESERVATION_GRACE + 1)
    await store.create("alice")
    with pytest.raises(TaskLimitExceeded):
        await store.create("alice")
