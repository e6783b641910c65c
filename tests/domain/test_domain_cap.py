"""Per-owner cap: enforced per owner, freed after expiry plus the grace, race-proof, healing."""

from __future__ import annotations

import asyncio

import pytest
from domain_support import YieldingBackend

from conformance.faults import FaultyBackend
from conformance.harness import ManualClock
from pmcp_tasks import (
    BackendError,
    GenericTaskStore,
    StorageFailure,
    StoreConfig,
    TaskLimitExceeded,
    TaskNotFound,
    VersionedRecord,
    partition_prefix,
)
from pmcp_tasks.cap import SLOT_PARTITION_MARK, slot_data, slot_prefix
from pmcp_tasks.config import DEAD_TASK_GRACE
from reference_backends.memory import InMemoryBackend, MemoryStore

pytestmark = pytest.mark.anyio

CAP3 = StoreConfig(max_tasks_per_owner=3)


async def slots(backend: InMemoryBackend, owner: str) -> dict[str, bytes]:
    return {key: r.data for key, r in await backend.list_by_prefix(slot_prefix(owner))}


async def test_default_cap_is_100(store: GenericTaskStore) -> None:
    await asyncio.gather(*(store.create("alice") for _ in range(100)))
    with pytest.raises(TaskLimitExceeded, match="already has 100 unfinished tasks") as raised:
        await store.create("alice")
    assert raised.value.code == -32602
    assert (await store.create("bob")).owner == "bob"  # the cap is per owner
    tasks, _ = await store.list("alice", limit=1000)
    assert len(tasks) == 100


async def test_cap_counts_dead_tasks_for_the_grace(clock: ManualClock) -> None:
    store = GenericTaskStore(InMemoryBackend(clock=clock), CAP3, clock)
    ids = [(await store.create("alice", ttl=60)).task_id for _ in range(3)]
    await store.complete("alice", ids[0], "done")  # a finished task frees its slot at once
    await store.create("alice", ttl=60)
    with pytest.raises(TaskLimitExceeded):
        await store.create("alice")
    clock.advance(60)  # expired, but maybe not removed yet: still counted
    with pytest.raises(TaskLimitExceeded):
        await store.create("alice")
    clock.advance(DEAD_TASK_GRACE)  # surely removed now: the slots are free
    fresh = [await store.create("alice") for _ in range(3)]
    assert len(fresh) == 3
    with pytest.raises(TaskLimitExceeded):
        await store.create("alice")


async def test_cap_freed_after_cleanup(clock: ManualClock, backend: InMemoryBackend) -> None:
    store = GenericTaskStore(backend, CAP3, clock)
    for _ in range(3):
        await store.create("alice", ttl=10)
    clock.advance(10 + DEAD_TASK_GRACE)
    removed = await store.cleanup_expired()
    assert removed == 6  # three tasks and their three slots
    assert await backend.list_by_prefix(partition_prefix("alice")) == []
    assert await slots(backend, "alice") == {}
    for _ in range(3):
        await store.create("alice")


async def test_slots_are_one_small_record_per_task_and_unreachable(
    clock: ManualClock, backend: InMemoryBackend
) -> None:
    store = GenericTaskStore(backend, CAP3, clock)
    record = await store.create("alice", ttl=30)
    held = await slots(backend, "alice")
    assert len(held) == 1
    [(key, data)] = held.items()
    assert key.startswith(SLOT_PARTITION_MARK)
    assert not key.startswith(partition_prefix("alice"))
    assert data == b'{"task":"' + record.task_id.encode() + b'"}'
    stored = await backend.get(key)
    assert stored is not None
    assert record.expires_at is not None
    assert stored.expires_at == record.expires_at + DEAD_TASK_GRACE
    with pytest.raises(TaskNotFound):
        await store.get("alice", key.split(":")[1])
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
    """Accepts slot writes but fails every task write, like a storage outage mid-create."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        if not key.startswith(SLOT_PARTITION_MARK):
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
    assert await slots(healthy.backend, "alice") == {}  # type: ignore[arg-type]
    for _ in range(3):
        await healthy.create("alice")


async def test_slot_of_a_task_never_written_is_reclaimed(
    clock: ManualClock, backend: InMemoryBackend
) -> None:
    """A crash between claiming and writing leaves a slot; after the grace it is freed."""
    store = GenericTaskStore(backend, CAP3, clock)
    await store.create("alice")
    await store.create("alice")
    ghost = await store.create("alice")
    assert await backend.delete(partition_prefix("alice") + ghost.task_id)  # as if never written
    with pytest.raises(TaskLimitExceeded):
        await store.create("alice")  # too young to be called a ghost
    clock.advance(DEAD_TASK_GRACE + 1)
    await store.create("alice")
    with pytest.raises(TaskLimitExceeded):
        await store.create("alice")


async def test_rebuild_near_the_cap_gives_orphans_their_slots(
    clock: ManualClock, backend: InMemoryBackend
) -> None:
    """A create that lists the slots (its probes all missed) re-slots live tasks without one."""
    store = GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=4), clock)
    kept = [(await store.create("alice")).task_id for _ in range(3)]
    [key] = [k for k, data in (await slots(backend, "alice")).items() if kept[0].encode() in data]
    assert await backend.delete(key)
    prefix = slot_prefix("alice")
    taken = {int(k[len(prefix) :]) for k in await slots(backend, "alice")}
    for index in set(range(4)) - taken:  # damage the two free slots: probes cannot take them
        await backend.put(prefix + str(index), b"{}", expires_at=None)
    new = await store.create("alice")  # probes all miss; the listing finds 2 damaged slots
    named = b"".join((await slots(backend, "alice")).values())
    assert all(task_id.encode() in named for task_id in [*kept, new.task_id])
    with pytest.raises(TaskLimitExceeded):
        await store.create("alice")


async def test_undecodable_slots_are_free(clock: ManualClock, backend: InMemoryBackend) -> None:
    """Damaged slot state never refuses an owner below the cap, whatever it holds."""
    prefix = slot_prefix("alice")
    one = '"' + "0" * 48 + '"'
    junk = [
        b"Infinity",
        b'{"task": 1e400}',
        b"\xff" + b"9" * 5000,
        f'{{"tasks": [{one}]}}'.encode(),  # an adopting slot names two tasks or more
        f'{{"tasks": [{one}, 7]}}'.encode(),
    ]
    store = GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=5), clock)
    for index, data in enumerate(junk):
        await backend.put(prefix + str(index), data, expires_at=None)
    for _ in range(5):
        await store.create("alice")
    with pytest.raises(TaskLimitExceeded):
        await store.create("alice")
    assert len(await slots(backend, "alice")) == 5


class DamagedBelowTheStore(InMemoryBackend):
    """Records at ``damaged`` keys behave as KV-DAMAGE-1 lets a backend treat a record it
    cannot decode: ``get`` raises ``BackendError`` naming the key, listings skip it, ``put`` and
    ``delete`` repair it, and ``put_if_version`` either compares with the version the damage
    spared or (``refuse``) raises ``BackendError`` naming the key."""

    damaged: set[str]
    refuse: bool

    async def get(self, key: str) -> VersionedRecord | None:
        if key in self.damaged:
            raise BackendError(f"the record at {key!r} cannot be decoded")
        return await super().get(key)

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        listed = await super().list_by_prefix(prefix, after=after, limit=limit)
        return [(key, record) for key, record in listed if key not in self.damaged]

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        if key in self.damaged and self.refuse:
            raise BackendError(f"the record at {key!r} cannot be decoded")
        version = await super().put_if_version(key, data, expected_version, expires_at=expires_at)
        self.damaged.discard(key)
        return version

    async def delete(self, key: str) -> bool:
        self.damaged.discard(key)
        return await super().delete(key)


@pytest.mark.parametrize("refuse", [False, True], ids=["spared-version", "refusing"])
async def test_slots_damaged_below_the_store_are_overwritten(
    clock: ManualClock, refuse: bool
) -> None:
    """A slot the backend cannot decode is unlisted and unreadable: it must not hold its index."""
    backend = DamagedBelowTheStore(clock=clock)
    backend.refuse = refuse
    backend.damaged = {slot_prefix("alice") + str(index) for index in range(3)}
    for key in backend.damaged:
        await InMemoryBackend.put(backend, key, b"undecodable", expires_at=None)
    store = GenericTaskStore(backend, CAP3, clock)
    made = [await store.create("alice") for _ in range(3)]
    assert backend.damaged == set()
    with pytest.raises(TaskLimitExceeded):
        await store.create("alice")
    named = b"".join((await slots(backend, "alice")).values())
    assert all(task.task_id.encode() in named for task in made)


async def test_a_task_finished_after_a_refusal_frees_its_slot_at_once(
    clock: ManualClock,
) -> None:
    """A refusal remembers that it read the owner's tasks (refusals after it read only the
    slots), and a slot whose task finished still names that task: finishing must make the next
    create look at the tasks again, or the owner stays refused for ``dead_task_grace``."""
    store = GenericTaskStore(InMemoryBackend(clock=clock), CAP3, clock)
    ids = [(await store.create("alice", ttl=600)).task_id for _ in range(3)]
    for _ in range(2):
        with pytest.raises(TaskLimitExceeded):
            await store.create("alice")
    await store.cancel("alice", ids[1])
    assert (await store.create("alice", ttl=600)).owner == "alice"
    with pytest.raises(TaskLimitExceeded):
        await store.create("alice")
    await store.complete("alice", ids[2], "done")
    assert (await store.create("alice", ttl=600)).owner == "alice"


async def test_the_creating_store_frees_a_finished_tasks_slot_by_key(clock: ManualClock) -> None:
    """The instance that created a task usually finishes it: its slot is freed with one read
    and one compare-and-set on the slot it claimed, without listing the owner's slots."""
    backend = FaultyBackend(InMemoryBackend(clock=clock))
    store = GenericTaskStore(backend, CAP3, clock)
    ids = [(await store.create("alice", ttl=600)).task_id for _ in range(3)]
    backend.log.clear()
    await store.complete("alice", ids[0], "done")
    slot_calls = [c for c in backend.log if c.key and c.key.startswith(slot_prefix("alice"))]
    assert [c.method for c in slot_calls] == ["get", "put_if_version"], backend.log
    assert (await store.create("alice", ttl=600)).owner == "alice"  # the slot is free
    with pytest.raises(TaskLimitExceeded):
        await store.create("alice")


async def test_a_task_finished_by_another_store_frees_its_slot_through_the_listing(
    clock: ManualClock, memory: MemoryStore
) -> None:
    creator = GenericTaskStore(InMemoryBackend(store=memory, clock=clock), CAP3, clock)
    finisher = GenericTaskStore(InMemoryBackend(store=memory, clock=clock), CAP3, clock)
    ids = [(await creator.create("alice", ttl=600)).task_id for _ in range(3)]
    await finisher.cancel("alice", ids[0])
    await finisher.complete("alice", ids[1], "done")
    assert len(await slots(InMemoryBackend(store=memory, clock=clock), "alice")) == 1
    for _ in range(2):
        await creator.create("alice", ttl=600)
    with pytest.raises(TaskLimitExceeded):
        await creator.create("alice")


async def test_a_remembered_claim_whose_slot_changed_is_not_ended_by_key(
    clock: ManualClock, backend: InMemoryBackend
) -> None:
    """A slot rewritten since this store claimed it (here: naming another task) is left to the
    listing, which frees only what names the finished task."""
    store = GenericTaskStore(backend, CAP3, clock)
    task = await store.create("alice", ttl=600)
    [(key, stored)] = await backend.list_by_prefix(slot_prefix("alice"))
    other = slot_data("0" * 48)
    await backend.put_if_version(key, other, stored.version, expires_at=stored.expires_at)
    await store.complete("alice", task.task_id, "done")
    assert [r.data for _, r in await backend.list_by_prefix(slot_prefix("alice"))] == [other]
