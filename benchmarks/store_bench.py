"""Section 4: GenericTaskStore over each backend, and where its own time goes.

"The store adds at most X on top of the backend operations it issues" is measured directly:
the same workload runs on a store over the plain backend (its time per operation is the
store's cost) and on a store over a proxy that adds up the time spent inside backend calls
(the part the store cannot avoid). The ratio of the two medians is what the store costs per
unit of backend work. The proxy's own overhead falls inside the backend time it measures
(two clock readings per call), so it slightly flatters nothing but the backend.

The profile runs the in-memory store under cProfile and splits each operation's time into
canonical JSON encoding, JSON decoding, turning a decoded document into a checked
``TaskRecord`` (field types and ranges: stored data is not trusted), input validation and backend
calls. Only the
in-memory backend is profiled: the store's work does not depend on the backend, and on a
network backend cProfile cannot see time spent waiting (coroutines return at each await).
"""

from __future__ import annotations

import cProfile
import pstats
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.report import ProfileRow, StoreRow
from benchmarks.timing import Side, timed_pass
from benchmarks.workload import Settings
from pmcp_tasks import GenericTaskStore
from pmcp_tasks.backend import StorageBackend, VersionedRecord

STORE_OPERATIONS = ("create", "get", "set_variables", "complete")
TASKS_PER_OWNER = 40  # below the default cap of 100 live tasks per owner
VARIABLES = {"step": 0, "input": "x" * 200, "items": list(range(20))}
RESULT = {"content": [{"type": "text", "text": "done"}], "isError": False}


class TimedBackend:
    """Forwards to a backend and adds up the time spent in, and the number of, its calls."""

    def __init__(self, inner: StorageBackend) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities
        self.spent = 0.0
        self.calls = 0

    def _done(self, started: float) -> None:
        self.spent += time.perf_counter() - started
        self.calls += 1

    async def get(self, key: str) -> VersionedRecord | None:
        started = time.perf_counter()
        try:
            return await self.inner.get(key)
        finally:
            self._done(started)

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        started = time.perf_counter()
        try:
            return await self.inner.put(key, data, expires_at=expires_at)
        finally:
            self._done(started)

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        started = time.perf_counter()
        try:
            return await self.inner.put_if_version(
                key, data, expected_version, expires_at=expires_at
            )
        finally:
            self._done(started)

    async def delete(self, key: str) -> bool:
        started = time.perf_counter()
        try:
            return await self.inner.delete(key)
        finally:
            self._done(started)

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        started = time.perf_counter()
        try:
            return await self.inner.list_by_prefix(prefix, after=after, limit=limit)
        finally:
            self._done(started)

    async def cleanup_expired(self) -> int:
        return await self.inner.cleanup_expired()

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class StoreWorkload:
    """The four operations on one store; each pass uses fresh owners and tasks."""

    store: GenericTaskStore
    name: str
    passes: int = 0
    tasks: list[str] = field(default_factory=list)

    def owner(self, i: int) -> str:
        return f"{self.name}-{self.passes}-{i // TASKS_PER_OWNER}"

    async def _fresh(self, workers: int, per_worker: int) -> None:
        self.passes += 1

    async def _one_task(self, workers: int, per_worker: int) -> None:
        self.passes += 1
        self.tasks = [(await self.store.create(self.owner(0), variables=VARIABLES)).task_id]

    async def _many_tasks(self, workers: int, per_worker: int) -> None:
        self.passes += 1
        self.tasks = [
            (await self.store.create(self.owner(i), variables=VARIABLES)).task_id
            for i in range(per_worker)
        ]

    async def create(self, worker: int, i: int) -> object:
        return await self.store.create(self.owner(i), variables=VARIABLES)

    async def get(self, worker: int, i: int) -> object:
        return await self.store.get(self.owner(0), self.tasks[0])

    async def set_variables(self, worker: int, i: int) -> object:
        return await self.store.set_variables(self.owner(0), self.tasks[0], {"step": i})

    async def complete(self, worker: int, i: int) -> object:
        return await self.store.complete(self.owner(i), self.tasks[i], RESULT)

    def sides(self) -> dict[str, Side]:
        return {
            "create": Side(self.create, self._fresh),
            "get": Side(self.get, self._one_task),
            "set_variables": Side(self.set_variables, self._one_task),
            "complete": Side(self.complete, self._many_tasks),
        }


async def measure(
    name: str, backend: StorageBackend, iterations: int, rounds: int
) -> list[StoreRow]:
    """Store time and in-backend time of each operation, interleaved, medians of rounds."""
    timed = TimedBackend(backend)
    plain = StoreWorkload(GenericTaskStore(backend), "plain").sides()
    proxied = StoreWorkload(GenericTaskStore(timed), "timed").sides()
    target = 3.0 if name == "memory" else 1.30
    rows = []
    for operation in STORE_OPERATIONS:
        await timed_pass(plain[operation], 1, max(1, iterations // 10))  # warm-up
        store_times: list[float] = []
        backend_times: list[float] = []
        calls: list[float] = []
        for round_ in range(rounds):
            order = ("plain", "timed") if round_ % 2 == 0 else ("timed", "plain")
            for which in order:
                if which == "plain":
                    store_times.append((await timed_pass(plain[operation], 1, iterations)).seconds)
                    continue
                side = proxied[operation]
                if side.setup is not None:
                    await side.setup(1, iterations)
                spent, made = timed.spent, timed.calls
                await timed_pass(Side(side.op), 1, iterations)
                backend_times.append((timed.spent - spent) / iterations)
                calls.append((timed.calls - made) / iterations)
        rows.append(
            StoreRow(
                name,
                operation,
                statistics.median(store_times) * 1e6,
                statistics.median(backend_times) * 1e6,
                statistics.fmean(calls),
                target,
            )
        )
    return rows


Key = tuple[str, int, str]


def _inclusive(entries: dict[Key, Any], member: Callable[[Key], bool]) -> float:
    """Seconds spent inside ``member`` functions, counting nested member calls once."""
    total = 0.0
    for function, (_, _, _, _, callers) in entries.items():
        if not member(function):
            continue
        for caller, edge in callers.items():
            if not member(caller):
                total += edge[3]
    return total


def _via(
    entries: dict[Key, Any], callee: Callable[[Key], bool], caller: Callable[[Key], bool]
) -> float:
    """Seconds spent in ``callee`` functions when called directly by ``caller`` functions."""
    return sum(
        float(edge[3])
        for function, (_, _, _, _, callers) in entries.items()
        if callee(function)
        for parent, edge in callers.items()
        if caller(parent)
    )


def _encode(function: Key) -> bool:
    return function[0].endswith("record.py") and function[2] == "canonical_json"


def _decode(function: Key) -> bool:
    return function[0].endswith("json/decoder.py") and function[2] == "decode"


def _parse(function: Key) -> bool:
    return function[0].endswith("pmcp_tasks/record.py") and function[2] == "from_json"


def _validation(function: Key) -> bool:
    return function[0].endswith("pmcp_tasks/validation.py") and function[2] != "merge_variables"


def _backend(function: Key) -> bool:
    return "reference_backends" in function[0]


async def profile(backend: StorageBackend, iterations: int) -> list[ProfileRow]:
    """cProfile shares of each operation (see the module docstring)."""
    sides = StoreWorkload(GenericTaskStore(backend), "profiled").sides()
    rows = []
    for operation in STORE_OPERATIONS:
        side = sides[operation]
        if side.setup is not None:
            await side.setup(1, iterations)
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(iterations):
            await side.op(0, i)
        profiler.disable()
        entries: dict[Key, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]

        def is_operation(function: Key, name: str = operation) -> bool:
            return function[0].endswith("pmcp_tasks/store.py") and function[2] == name

        total = _inclusive(entries, is_operation)
        decode = _inclusive(entries, _decode)
        parse = _inclusive(entries, _parse) - _via(entries, _decode, _parse)
        rows.append(
            ProfileRow(
                "memory",
                operation,
                _inclusive(entries, _encode) / total,
                decode / total,
                parse / total,
                _inclusive(entries, _validation) / total,
                _inclusive(entries, _backend) / total,
            )
        )
    return rows


async def run(
    settings: Settings, backends: dict[str, tuple[StorageBackend, int]]
) -> tuple[list[StoreRow], list[ProfileRow]]:
    """``backends`` maps a name to a backend and the full iteration count it can afford.

    The backends are closed at the end.
    """
    rows = []
    try:
        for name, (backend, iterations) in backends.items():
            rounds = settings.rounds if name == "memory" else min(settings.rounds, 5)
            rows += await measure(name, backend, settings.iterations(iterations), rounds)
        memory, iterations = backends["memory"]
        return rows, await profile(memory, settings.iterations(iterations))
    finally:
        for backend, _ in backends.values():
            await backend.aclose()
