"""The per-owner cap under a stampede: 50 creates racing for the last slot, exactly one wins.

Every create claims one of the owner's slot records with a create-if-absent compare-and-set
(docs/domain.md), so the cap holds across asyncio tasks, store instances and backend clients.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest
from reliability_support import opened

from conformance.faults import FaultyBackend
from conformance.harness import BackendFactory, ManualClock, fresh_namespace
from pmcp_tasks import (
    GenericTaskStore,
    StorageBackend,
    StoreConfig,
    TaskLimitExceeded,
    TaskRecord,
)
from pmcp_tasks.cap import SLOT_PARTITION_MARK

pytestmark = pytest.mark.anyio

CAP = 10
RACERS = 50
GATED = 10


class SlotWriteGate:
    """Holds the first ``GATED`` slot claims of the race until all of them are ready.

    So at least ``GATED`` creates really claim at the same time, whatever the backend's timing
    (fakeredis, for one, hardly ever yields by itself): the race is certain.
    """

    def __init__(self) -> None:
        self.armed = False
        self.passed = 0
        self.all_read = asyncio.Event()

    async def before_write(self) -> None:
        if not self.armed or self.passed >= GATED:
            return
        self.passed += 1
        if self.passed == GATED:
            self.all_read.set()
        await self.all_read.wait()


class Gated(FaultyBackend):
    def __init__(self, inner: StorageBackend, gate: SlotWriteGate, seed: int) -> None:
        super().__init__(inner, seed=seed, delay_rate=1.0, max_delay=0.002)
        self.gate = gate

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        if key.startswith(SLOT_PARTITION_MARK):
            await self.gate.before_write()
        return await super().put_if_version(key, data, expected_version, expires_at=expires_at)


@pytest.mark.parametrize("clients", [1, 2])
async def test_fifty_creates_for_the_last_slot_one_wins(
    factory: BackendFactory, clients: int
) -> None:
    clock = ManualClock(start=1_800_000_000.0)
    namespace = fresh_namespace("cap")
    async with AsyncExitStack() as stack:
        backends = [
            await stack.enter_async_context(opened(factory, clock, namespace=namespace))
            for _ in range(clients)
        ]
        if clients == 2 and not backends[0].capabilities.shared:
            pytest.fail("every reference backend declares shared=True")
        config = StoreConfig(max_tasks_per_owner=CAP)
        # Random 0-2 ms delays on every call shuffle the racers; the gate makes them collide.
        gate = SlotWriteGate()
        delayed = [Gated(backend, gate, seed=n) for n, backend in enumerate(backends)]
        stores = [GenericTaskStore(backend, config, clock) for backend in delayed]
        for _ in range(CAP - 1):
            await stores[0].create("alice")
        gate.armed = True
        outcomes = await asyncio.gather(
            *(stores[i % clients].create("alice") for i in range(RACERS)),
            return_exceptions=True,
        )
        winners = [o for o in outcomes if isinstance(o, TaskRecord)]
        losers = [o for o in outcomes if not isinstance(o, TaskRecord)]
        assert len(winners) == 1, outcomes
        assert all(isinstance(o, TaskLimitExceeded) for o in losers), losers
        for store in stores:
            listed, _ = await store.list("alice")
            assert len(listed) == CAP
            assert winners[0] in listed
            with pytest.raises(TaskLimitExceeded):
                await store.create("alice")
        assert await stores[-1].create("bob")  # the cap is per owner
        slot_conflicts = [
            call
            for backend in delayed
            for call in backend.log
            if call.method == "put_if_version"
            and call.key
            and call.key.startswith(SLOT_PARTITION_MARK)
            and not call.applied
        ]
        assert len(slot_conflicts) >= RACERS - 1  # every racer but one lost at least once
