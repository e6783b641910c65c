"""Section 1: InMemoryBackend against a plain dict under a lock doing the same work.

The baseline keeps what the contract needs and nothing more: a ``threading.Lock``, one dict
of ``(data, version, expires_at)`` tuples, the liveness test, and for the page a sorted item
list searched with ``bisect`` (a page in key order needs an order; sorting the dict on every
page would make the baseline slower than the backend). It skips key and argument validation,
partitions and record objects, which is exactly the overhead the ratio shows.
"""

from __future__ import annotations

import bisect
import threading
import time

from benchmarks.report import OpRow
from benchmarks.timing import Side, compare
from benchmarks.workload import (
    OPERATIONS,
    PAGE_SIZE,
    PAYLOAD,
    Settings,
    backend_sides,
    expiry,
    item,
    prepared,
)
from reference_backends.memory import InMemoryBackend

TARGET = 1.15
ITERATIONS = 20_000


class DictBaseline:
    """The same five operations on a dict under a lock, without validation."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: dict[str, tuple[bytes, int, float | None]] = {}
        self.order: list[str] = []  # sorted keys, for the page
        self.versions: dict[int, int] = {}

    def _store(self, key: str, data: bytes, expires_at: float | None) -> int:
        """Upsert under the lock already held; returns the new version."""
        now = time.time()
        current = self.records.get(key)
        if current is None or (current[2] is not None and now >= current[2]):
            if current is None:
                bisect.insort(self.order, key)
            version = 1
        else:
            version = current[1] + 1
        self.records[key] = (data, version, expires_at)
        return version

    async def write(self, partition: str, item_: str) -> None:
        with self.lock:
            self._store(f"{partition}:{item_}", PAYLOAD, expiry())

    async def get(self, worker: int, i: int) -> object:
        key = "bench:" + item("get", worker)
        now = time.time()
        with self.lock:
            record = self.records.get(key)
            if record is None or (record[2] is not None and now >= record[2]):
                return None
            return record

    async def put(self, worker: int, i: int) -> object:
        expires_at = expiry()
        with self.lock:
            return self._store("bench:" + item("put", worker), PAYLOAD, expires_at)

    async def cas_setup(self, workers: int, per_worker: int) -> None:
        for worker in range(workers):
            with self.lock:
                self.versions[worker] = self._store(
                    "bench:" + item("cas", worker), PAYLOAD, expiry()
                )

    async def cas(self, worker: int, i: int) -> object:
        key = "bench:" + item("cas", worker)
        expected = self.versions[worker]
        expires_at = expiry()
        now = time.time()
        with self.lock:
            current = self.records.get(key)
            if current is None or (current[2] is not None and now >= current[2]):
                raise KeyError(key)
            if current[1] != expected:
                raise ValueError("conflict")
            self.records[key] = (PAYLOAD, expected + 1, expires_at)
        self.versions[worker] = expected + 1
        return expected + 1

    async def delete(self, worker: int, i: int) -> object:
        key = "bench:" + item("del", worker, i)
        now = time.time()
        with self.lock:
            record = self.records.pop(key, None)
            if record is not None:
                del self.order[bisect.bisect_left(self.order, key)]
        deleted = record is not None and (record[2] is None or now < record[2])
        assert deleted, "the record to delete was not there"
        return deleted

    async def page(self, worker: int, i: int) -> object:
        prefix = "page:"
        now = time.time()
        out: list[tuple[str, tuple[bytes, int, float | None]]] = []
        with self.lock:
            for index in range(bisect.bisect_left(self.order, prefix), len(self.order)):
                key = self.order[index]
                if not key.startswith(prefix):
                    break
                record = self.records[key]
                if record[2] is None or now < record[2]:
                    out.append((key, record))
                    if len(out) >= PAGE_SIZE:
                        break
        assert len(out) == PAGE_SIZE, "short page"
        return out

    def sides(self) -> dict[str, Side]:
        return {
            "get": prepared(self.get, self.write, "get"),
            "put": Side(self.put),
            "cas": Side(self.cas, self.cas_setup),
            "delete": prepared(self.delete, self.write, "del"),
            "list page": prepared(self.page, self.write, "page"),
        }


async def run(settings: Settings) -> list[OpRow]:
    subject = backend_sides(InMemoryBackend(namespace="bench"))
    baseline = DictBaseline().sides()
    rows = []
    for operation in OPERATIONS:
        iterations = settings.iterations(ITERATIONS // (10 if operation == "list page" else 1))
        result = await compare(
            subject[operation], baseline[operation], iterations=iterations, rounds=settings.rounds
        )
        rows.append(OpRow.measured("memory", operation, result, TARGET))
    return rows
