"""Paging while 20 writers create: the guarantee of docs/domain.md, on every backend.

Ids are chosen before a create's write lands, so a slower create can land behind a cursor
already handed out; what holds is that every task acknowledged before paging began is listed
once, and none twice (``paging_race.py``). The clock stands still here, so every id falls in
one millisecond and is ordered by its random bits alone: creates made meanwhile land on both
sides of the cursor, the hardest case. ``test_redis_server.py`` runs the same on a real server.
"""

from __future__ import annotations

import pytest
from paging_race import check, page_while_creating
from reliability_support import opened

from conformance.harness import BackendFactory, ManualClock
from pmcp_tasks import GenericTaskStore, StoreConfig
from reference_backends.memory import InMemoryBackend

pytestmark = pytest.mark.anyio

MEMORY_SEEDS = range(12)


@pytest.mark.parametrize("seed", MEMORY_SEEDS)
async def test_paging_on_memory_over_many_seeds(
    backend: InMemoryBackend, clock: ManualClock, seed: int
) -> None:
    store = GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=None), clock)
    run = await page_while_creating(store, "alice", seed)
    check(run)
    assert run.during  # the writers really wrote while the pager ran


async def test_paging_lists_every_task_created_before_it_once(factory: BackendFactory) -> None:
    """One seed per embedded engine (moto takes some 20 s for it; memory has many above)."""
    clock = ManualClock(start=1_800_000_000.0)
    async with opened(factory, clock, "paging") as backend:
        store = GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=None), clock)
        run = await page_while_creating(store, "alice", seed=0)
        check(run)
        assert run.during
