"""The operations every backend section times, and the settings of one run.

Each section compares a backend with a raw client doing the same work on the same shapes: a
1 KiB record with an expiry an hour ahead (a task's default TTL), one key per concurrent
worker so that CAS never conflicts (conflicts are the domain's business, not a speed
measurement), and a 50-record page of a 200-record partition.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from benchmarks.timing import Counter, Side
from pmcp_tasks.backend import StorageBackend

PAYLOAD = bytes(range(256)) * 4  # 1 KiB, every byte value: data is opaque bytes
PAGE_RECORDS = 200
PAGE_SIZE = 50
OPERATIONS = ("get", "put", "cas", "delete", "list page")


@dataclass(frozen=True)
class Settings:
    """Iterations per timed pass and rounds per comparison; ``--quick`` shrinks both."""

    quick: bool
    rounds: int

    def iterations(self, full: int) -> int:
        return max(20, full // 20) if self.quick else full


def expiry() -> float:
    return time.time() + 3600


def item(operation: str, worker: int, i: int = 0) -> str:
    """Item part of a key: one key per worker, or per call for deletes."""
    return f"{operation}{worker:03d}-{i:06d}" if operation == "del" else f"{operation}{worker:03d}"


def page_item(index: int) -> str:
    return f"rec{index:04d}"


Write = Callable[[str, str], Awaitable[object]]
"""``write(partition, item)``: store PAYLOAD there (how a side prepares its records)."""


def prepared(
    op: Callable[[int, int], Awaitable[object]],
    setup: Write,
    what: str,
    requests: Counter | None = None,
) -> Side:
    """A side whose pass first writes the keys ``op`` reads or deletes (``what`` names them)."""

    written_page = False

    async def prepare(workers: int, per_worker: int) -> None:
        nonlocal written_page
        if what == "del":

            async def fill(worker: int) -> None:
                for i in range(per_worker):
                    await setup("bench", item("del", worker, i))

            await asyncio.gather(*(fill(worker) for worker in range(workers)))
        elif what == "page":
            if written_page:
                return
            written_page = True
            for index in range(PAGE_RECORDS):
                await setup("page", page_item(index))
        else:
            for worker in range(workers):
                await setup("bench", item(what, worker))

    return Side(op, prepare, requests)


def backend_sides(backend: StorageBackend, requests: Counter | None = None) -> dict[str, Side]:
    """The five operations through the StorageBackend contract."""
    versions: dict[int, int] = {}

    async def write(partition: str, item_: str) -> None:
        await backend.put(f"{partition}:{item_}", PAYLOAD, expires_at=expiry())

    async def get(worker: int, i: int) -> object:
        return await backend.get("bench:" + item("get", worker))

    async def put(worker: int, i: int) -> object:
        return await backend.put("bench:" + item("put", worker), PAYLOAD, expires_at=expiry())

    async def cas_setup(workers: int, per_worker: int) -> None:
        for worker in range(workers):
            versions[worker] = await backend.put(
                "bench:" + item("cas", worker), PAYLOAD, expires_at=expiry()
            )

    async def cas(worker: int, i: int) -> object:
        versions[worker] = await backend.put_if_version(
            "bench:" + item("cas", worker), PAYLOAD, versions[worker], expires_at=expiry()
        )
        return versions[worker]

    async def delete(worker: int, i: int) -> object:
        deleted = await backend.delete("bench:" + item("del", worker, i))
        assert deleted, "the record to delete was not there"
        return deleted

    async def page(worker: int, i: int) -> object:
        records = await backend.list_by_prefix("page:", limit=PAGE_SIZE)
        assert len(records) == PAGE_SIZE, "short page"
        return records

    return {
        "get": prepared(get, write, "get", requests),
        "put": Side(put, None, requests),
        "cas": Side(cas, cas_setup, requests),
        "delete": prepared(delete, write, "del", requests),
        "list page": prepared(page, write, "page", requests),
    }
