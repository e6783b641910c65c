"""Redis under memory pressure: what a full server lets through, and what a refused create reads.

* ``maxmemory``: creates of 2 KB tasks on a ``noeviction`` server with ``maxmemory`` 2 MB until
  one is refused; the acknowledged creates and ``used_memory`` against the limit.
* cap: an owner at ``max_tasks_per_owner`` 100 with tasks of 1 MB of variables; three refused
  creates in a row against one ``get``: bytes the server sent (``INFO stats``
  ``total_net_output_bytes``) and time. The first reads every task (and marks the owner for
  ``dead_task_grace``), the others only the slots.

The server is the binary ``$PMCP_REDIS_ENGINE`` selects (tests/servers.py). Run:
``python -m benchmarks.redis_memory_pressure``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis
from servers import redis_engine, redis_server, redis_server_url

from conformance.harness import ManualClock
from pmcp_tasks import GenericTaskStore, StorageFailure, StoreConfig, TaskLimitExceeded
from reference_backends.redis import RedisBackend

LIMIT = 2 * 1024 * 1024
CAP = 100
BIG = {f"p{index}": "x" * 60_000 for index in range(17)}  # 1 MB in strings of 60 KB


async def _sent(url: str) -> int:
    async with Redis.from_url(url) as raw:
        sent: int = (await raw.info("stats"))["total_net_output_bytes"]
        return sent


async def maxmemory(url: str) -> None:
    clock = ManualClock()
    backend = RedisBackend.from_url(url, namespace="mm", clock=clock)
    store = GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=None), clock)
    acknowledged = 0
    try:
        for _ in range(3000):
            try:
                await store.create("alice", variables={"p": "x" * 2000})
            except StorageFailure:
                break
            acknowledged += 1
    finally:
        await backend.aclose()
    async with Redis.from_url(url) as raw:
        used = (await raw.info("memory"))["used_memory"]
    print(
        f"| maxmemory {LIMIT:,} B | {acknowledged:,} of 3,000 creates acknowledged | "
        f"used_memory {used:,} B = {used / LIMIT:.2f}x the limit |"
    )


async def refused_at_cap(url: str) -> None:
    clock = ManualClock()
    backend = RedisBackend.from_url(url, namespace="cap", clock=clock)
    store = GenericTaskStore(backend, StoreConfig(max_tasks_per_owner=CAP), clock)
    try:
        tasks = [await store.create("alice", variables=BIG) for _ in range(CAP)]
        clock.advance(store.config.dead_task_grace + 1)  # none is young: each one is asked
        before = await _sent(url)
        began = time.perf_counter()
        await store.get("alice", tasks[0].task_id)
        get_s = time.perf_counter() - began
        get_bytes = await _sent(url) - before
        refusals = [await _refused(store, url) for _ in range(3)]
    finally:
        await backend.aclose()
    print(f"| get of a 1 MB task | {get_bytes:,} B sent | {get_s * 1000:.1f} ms |")
    for which, (sent, seconds) in zip(("first", "second", "third"), refusals, strict=True):
        print(
            f"| {which} refused create at cap {CAP} | {sent:,} B sent | "
            f"{seconds * 1000:.1f} ms ({seconds / get_s:.1f}x the get) |"
        )


async def _refused(store: GenericTaskStore, url: str) -> tuple[int, float]:
    """Bytes the server sent for one create refused at the cap, and its seconds."""
    before = await _sent(url)
    began = time.perf_counter()
    try:
        await store.create("alice")
    except TaskLimitExceeded:
        seconds = time.perf_counter() - began
    else:
        raise AssertionError(f"a create beyond the cap of {CAP} was not refused")
    return await _sent(url) - before, seconds


async def main() -> None:
    print(f"engine: {redis_engine()}")
    with tempfile.TemporaryDirectory() as tmp:
        server = redis_server(
            Path(tmp) / "full", "--maxmemory", str(LIMIT), "--maxmemory-policy", "noeviction"
        )
        with server:
            await maxmemory(redis_server_url(server))
        server = redis_server(Path(tmp) / "cap")
        with server:
            await refused_at_cap(redis_server_url(server))


if __name__ == "__main__":
    asyncio.run(main())
