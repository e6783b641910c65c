"""The backends every reliability test runs on, each on its embedded engine.

memory always; Redis on fakeredis and DynamoDB on moto in-process, through the kit factories of
their packages: every backend installed here (``servers.installed_backends``, which
``tests/test_extras.py`` holds to what the tox environment promises).
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from conformance.faults import FaultyBackend
from conformance.harness import BackendFactory, ManualClock, fresh_namespace, open_target
from pmcp_tasks import GenericTaskStore, StorageBackend, StoreConfig
from pmcp_tasks.backend import Clock
from pmcp_tasks.cap import SLOT_PARTITION_MARK
from reference_backends.memory import InMemoryBackend

T = TypeVar("T")


def kit_factory(name: str) -> BackendFactory:
    """The named backend's kit factory."""
    module = importlib.import_module(f"reference_backends.{name}")
    factory: BackendFactory = module.kit_factory
    return factory


@asynccontextmanager
async def opened(
    factory: BackendFactory,
    clock: Clock,
    label: str = "rel",
    *,
    namespace: str | None = None,
    **options: str,
) -> AsyncIterator[StorageBackend]:
    """A backend on a fresh namespace (or on ``namespace``), emptied and closed afterwards."""
    namespace = fresh_namespace(label) if namespace is None else namespace
    target = await open_target(factory, namespace=namespace, clock=clock, **options)
    try:
        yield target.backend
    finally:
        await target.dispose()


async def fifty_creates_write_each_key_once(backend: StorageBackend, clock: Clock) -> None:
    """One owner's 50 concurrent creates with 2 CAS attempts: all succeed, no key rewritten.

    A cap kept in one record that every create rewrites made about half of 100 such creates
    fail even with 20 attempts; slots are written once each, one per task.
    """
    recorder = FaultyBackend(backend)
    config = StoreConfig(max_tasks_per_owner=100, cas_attempts=2)
    store = GenericTaskStore(recorder, config, clock)
    created = await asyncio.gather(*(store.create("alice") for _ in range(50)))
    assert len({task.task_id for task in created}) == 50
    writes = Counter(
        call.key
        for call in recorder.log
        if call.method == "put_if_version" and call.key and call.applied
    )
    assert sum(1 for key in writes if key.startswith(SLOT_PARTITION_MARK)) == 50
    assert set(writes.values()) == {1}


async def dead_partition(clock: ManualClock, dead: int) -> InMemoryBackend:
    """A memory backend whose partition ``p`` holds ``dead`` records (``p:a000000`` on), dead
    from ``clock() + 10``, and 5 live ones after them; the clock is left 20 s on."""
    backend = InMemoryBackend(clock=clock)
    dies = clock() + 10
    for index in range(dead):
        await backend.put(f"p:a{index:06d}", b"x", expires_at=dies)
    for index in range(5):
        await backend.put(f"p:b{index}", b"live", expires_at=None)
    clock.advance(20)
    return backend


@dataclass(frozen=True)
class LoopShare:
    """What the event loop did while one call was awaited: the turns other tasks got, the
    longest it went without one, and the call's total time (seconds)."""

    turns: int
    longest_block: float
    total: float


async def loop_share(call: Awaitable[T]) -> tuple[T, LoopShare]:
    """``call``'s result, and how much of the loop it left to a task that only yields."""
    turns, longest = 0, 0.0
    stop = asyncio.Event()

    async def yielder() -> None:
        nonlocal turns, longest
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0)
            now = time.perf_counter()
            turns, longest, last = turns + 1, max(longest, now - last), now

    running = asyncio.ensure_future(yielder())
    await asyncio.sleep(0)  # the yielder starts before the call
    began, start = time.perf_counter(), turns
    try:
        result = await call
        share = LoopShare(turns - start, longest, time.perf_counter() - began)
    finally:
        stop.set()
        await running
    return result, share
