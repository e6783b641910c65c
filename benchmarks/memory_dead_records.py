"""The memory backend with 25,000 / 50,000 / 100,000 dead records in one partition.

For ``cleanup_expired`` and for the first and second ``list_by_prefix`` after the records
died: the call's total time, and the longest the event loop was held (the longest gap between
turns of a task that only yields), which is what every other task of the process waits.
Run: ``python -m benchmarks.memory_dead_records``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

from conformance.harness import ManualClock
from reference_backends.memory import InMemoryBackend

SIZES = (25_000, 50_000, 100_000)
START = 1_800_000_000.0


async def _timed(call: Awaitable[object]) -> tuple[float, float]:
    """Total ms of ``call`` and the longest ms the loop went without another task's turn."""
    longest = 0.0
    stop = asyncio.Event()

    async def watch() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now

    watcher = asyncio.ensure_future(watch())
    await asyncio.sleep(0)
    began = time.perf_counter()
    await call
    total = time.perf_counter() - began
    stop.set()
    await watcher
    return total * 1000, longest * 1000


async def _dead(size: int) -> tuple[InMemoryBackend, ManualClock]:
    clock = ManualClock(start=START)
    backend = InMemoryBackend(clock=clock)
    for index in range(size):
        await backend.put(f"p:a{index:06d}", b"x", expires_at=START + 10)
    for index in range(5):
        await backend.put(f"p:b{index}", b"live", expires_at=None)
    clock.advance(20)
    return backend, clock


async def main() -> None:
    print("| dead records | call | total ms | longest loop block ms |")
    print("|---:|---|---:|---:|")
    for size in SIZES:
        backend, _ = await _dead(size)
        for label in ("first list_by_prefix", "second list_by_prefix"):
            total, block = await _timed(backend.list_by_prefix("p:", limit=50))
            print(f"| {size:,} | {label} | {total:.1f} | {block:.1f} |")
        total, block = await _timed(backend.cleanup_expired())
        print(f"| {size:,} | cleanup_expired (after the listings) | {total:.1f} | {block:.1f} |")
        backend, _ = await _dead(size)
        total, block = await _timed(backend.cleanup_expired())
        print(f"| {size:,} | cleanup_expired (no listing before) | {total:.1f} | {block:.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
