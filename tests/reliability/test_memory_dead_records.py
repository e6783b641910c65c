"""The memory backend with many dead records: it never holds the event loop for all of them.

``cleanup_expired`` took 3.3 s for 100,000 dead records of one partition (each removal moved the
rest of a sorted list), and every ``list()`` walked every dead record, 200-290 ms in one block.
Now both work in slices of ``SLICE`` index entries and let the loop run between them, a
listing parks the dead records it meets so that the next one does not walk them, and a clean-up
takes the dead records from an expiry queue. Timings are in
docs/reports/store-faults-2026-12.md (``python -m benchmarks.memory_dead_records``); here,
what can be counted: the loop's turns during each call, and what each call returns.
"""

from __future__ import annotations

import pytest
from reliability_support import dead_partition, loop_share

from conformance.harness import ManualClock
from reference_backends.memory import SLICE

pytestmark = pytest.mark.anyio

DEAD = 20 * SLICE
START = 1_800_000_000.0


async def test_cleanup_of_many_dead_records_lets_the_loop_run_and_removes_only_them() -> None:
    clock = ManualClock(start=START)
    backend = await dead_partition(clock, DEAD)
    # Rewritten with a later expiry: its first expiry's queue entry must not remove it.
    await backend.put("p:a000000", b"again", expires_at=START + 1000)
    removed, share = await loop_share(backend.cleanup_expired())
    turns = share.turns
    assert removed == DEAD - 1
    assert turns >= DEAD // SLICE - 2, f"the loop ran {turns} times during the clean-up"
    listed = await backend.list_by_prefix("p:")
    assert [key for key, _ in listed] == ["p:a000000", *(f"p:b{i}" for i in range(5))]
    assert await backend.cleanup_expired() == 0


async def test_a_listing_lets_the_loop_run_and_the_next_one_meets_no_dead_record() -> None:
    clock = ManualClock(start=START)
    backend = await dead_partition(clock, DEAD)
    first, share = await loop_share(backend.list_by_prefix("p:", limit=10))
    turns = share.turns
    assert [key for key, _ in first] == [f"p:b{i}" for i in range(5)]
    assert turns >= DEAD // SLICE - 2, f"the loop ran {turns} times during the first listing"
    second, share = await loop_share(backend.list_by_prefix("p:", limit=10))
    turns = share.turns
    assert second == first
    assert turns == 0, "the second listing walked the dead records again"
    # Parked, not removed: the clean-up still finds and counts every one of them.
    assert await backend.cleanup_expired() == DEAD


async def test_parked_records_are_listed_again_when_the_clock_goes_back() -> None:
    """KV-LIVE-3 with the index compacted: the parked records come back, in key order."""
    clock = ManualClock(start=START)
    backend = await dead_partition(clock, DEAD)
    assert len(await backend.list_by_prefix("p:")) == 5
    clock.advance(-15)  # START + 5: they are live again
    listed = await backend.list_by_prefix("p:", after="p:a000099", limit=3)
    assert [key for key, _ in listed] == ["p:a000100", "p:a000101", "p:a000102"]
    assert len(await backend.list_by_prefix("p:")) == DEAD + 5
    assert await backend.cleanup_expired() == 0
    clock.advance(15)
    await backend.put("p:a000007", b"new", expires_at=None)  # a parked key written again
    assert await backend.cleanup_expired() == DEAD - 1
    assert [key for key, _ in await backend.list_by_prefix("p:a")] == ["p:a000007"]
