"""In-memory reference backend: the executable statement of the contract.

Standard library only. One :class:`MemoryStore` holds any number of namespaces; every backend
opened on the same store and namespace sees the same records (``capabilities.shared_in_process``;
another process has its own memory), which is what lets the kit's multi-client tests and a
single process's several stores agree. A
``threading.Lock`` (not an ``asyncio.Lock``) guards it because callers may come from several
threads and event loops; no method awaits while holding it, so it never blocks a loop for long.

Each partition keeps its item keys in a sorted list, so a page costs a bisect plus the page
(O(log n + page)) rather than a scan of the store.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pmcp_tasks.backend import BackendCapabilities, Clock, VersionedRecord, is_live
from pmcp_tasks.backend_base import BackendBase, next_version
from pmcp_tasks.config import StoreConfig
from pmcp_tasks.errors import RecordNotFound, VersionConflict
from pmcp_tasks.keys import check_data, check_expires_at, check_key, split_key
from pmcp_tasks.store import GenericTaskStore

if TYPE_CHECKING:
    from conformance.harness import KitTarget


@dataclass(slots=True)
class _Partition:
    items: list[str] = field(default_factory=list)  # sorted item parts of the keys
    records: dict[str, VersionedRecord] = field(default_factory=dict)


class MemoryStore:
    """The shared state behind one or more :class:`InMemoryBackend` instances."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.namespaces: dict[str, dict[str, _Partition]] = {}

    def namespace(self, name: str) -> dict[str, _Partition]:
        with self.lock:
            return self.namespaces.setdefault(name, {})


class InMemoryBackend(BackendBase):
    """A :class:`~pmcp_tasks.StorageBackend` kept in process memory, on :class:`BackendBase`."""

    def __init__(
        self,
        *,
        namespace: str = "default",
        clock: Clock = time.time,
        max_record_bytes: int | None = None,
        store: MemoryStore | None = None,
    ) -> None:
        if max_record_bytes is not None and max_record_bytes < 1:
            raise ValueError(f"max_record_bytes must be >= 1 or None, not {max_record_bytes}")
        self._store = store if store is not None else MemoryStore()
        self._lock = self._store.lock
        self._partitions = self._store.namespace(namespace)
        self._clock = clock
        self.capabilities = BackendCapabilities(
            max_record_bytes=max_record_bytes, shared_in_process=True, injectable_clock=True
        )

    def _live(self, part: _Partition | None, item: str, now: float) -> VersionedRecord | None:
        if part is None:
            return None
        record = part.records.get(item)
        if record is None or not is_live(record.expires_at, now):
            return None
        return record

    def _write(self, partition: str, item: str, record: VersionedRecord) -> None:
        part = self._partitions.get(partition)
        if part is None:
            part = self._partitions[partition] = _Partition()
        if item not in part.records:
            bisect.insort(part.items, item)
        part.records[item] = record

    def _remove(self, partition: str, item: str) -> None:
        part = self._partitions[partition]
        del part.records[item]
        del part.items[bisect.bisect_left(part.items, item)]
        if not part.items:
            del self._partitions[partition]

    async def _get(self, key: str) -> VersionedRecord | None:
        partition, item = split_key(key)
        now = self._clock()
        with self._lock:
            return self._live(self._partitions.get(partition), item, now)

    async def _put(self, key: str, data: bytes, expires_at: float | None) -> int:
        partition, item = split_key(key)
        now = self._clock()
        with self._lock:
            current = self._live(self._partitions.get(partition), item, now)
            version = 1 if current is None else next_version(key, current.version)
            self._write(partition, item, VersionedRecord(data, version, expires_at))
        return version

    async def _put_if_version(
        self, key: str, data: bytes, expected_version: int, expires_at: float | None
    ) -> int:
        partition, item = split_key(key)
        now = self._clock()
        with self._lock:
            current = self._live(self._partitions.get(partition), item, now)
            if current is None:
                if expected_version != 0:
                    raise RecordNotFound(key)
            elif current.version != expected_version:
                raise VersionConflict(key, expected_version, current.version)
            version = next_version(key, expected_version)
            self._write(partition, item, VersionedRecord(data, version, expires_at))
        return version

    async def _delete(self, key: str) -> bool:
        partition, item = split_key(key)
        now = self._clock()
        with self._lock:
            part = self._partitions.get(partition)
            if part is None or item not in part.records:
                return False
            live = self._live(part, item, now) is not None
            self._remove(partition, item)
            return live

    async def _list(
        self, partition: str, item_prefix: str, after_item: str | None, limit: int | None
    ) -> list[tuple[str, VersionedRecord]]:
        now = self._clock()
        out: list[tuple[str, VersionedRecord]] = []
        with self._lock:
            part = self._partitions.get(partition)
            if part is None:
                return out
            start = bisect.bisect_left(part.items, item_prefix)
            if after_item is not None:
                start = max(start, bisect.bisect_right(part.items, after_item))
            for index in range(start, len(part.items)):
                item = part.items[index]
                if not item.startswith(item_prefix):
                    break
                key = partition + ":" + item
                record = self._live(part, item, now)
                if record is not None:
                    out.append((key, record))
                    if limit is not None and len(out) >= limit:
                        break
        return out

    async def _cleanup(self) -> int:
        now = self._clock()
        removed = 0
        with self._lock:
            for partition, part in list(self._partitions.items()):
                for item, record in list(part.records.items()):
                    if not is_live(record.expires_at, now):
                        self._remove(partition, item)
                        removed += 1
        return removed

    async def aclose(self) -> None:
        """Nothing to release: the records belong to the store, not to this view of it."""


class MemoryKitHooks:
    """The conformance kit's hooks for an :class:`InMemoryBackend` (conformance/harness.py).

    They write past the contract (any version, a whole namespace at once), which is why they
    live here beside the kit factory and not on the backend. There is no ``plant_damaged``:
    this backend keeps ``VersionedRecord`` objects, not encoded bytes, so nothing it stores can
    fail to decode.
    """

    def __init__(self, backend: InMemoryBackend) -> None:
        self.backend = backend

    async def seed(self, key: str, data: bytes, version: int, expires_at: float | None) -> None:
        """Store any version, so KV-VER-1 is testable next to 2**53 and 2**63-1."""
        partition, item = split_key(check_key(key))
        record = VersionedRecord(check_data(data), version, check_expires_at(expires_at))
        with self.backend._lock:
            self.backend._write(partition, item, record)

    async def drop_namespace(self) -> None:
        """Forget this namespace's records so that kit runs do not accumulate."""
        with self.backend._lock:
            self.backend._partitions.clear()


_KIT_STORE = MemoryStore()


def kit_factory(
    *, namespace: str, clock: Clock, max_record_bytes: str | None = None, **options: Any
) -> KitTarget:
    """Entry point ``memory`` of the conformance kit.

    All kit backends share one module-level store, so two calls with the same namespace give two
    clients on the same data. ``max_record_bytes`` arrives as a string from ``--backend-option``.
    The kit is imported here, not at the top, so that the backend itself loads no kit module.
    """
    from conformance.harness import KitTarget

    if options:
        raise ValueError(f"unknown memory backend options: {', '.join(sorted(options))}")
    limit = int(max_record_bytes) if max_record_bytes is not None else None
    backend = InMemoryBackend(
        namespace=namespace, clock=clock, max_record_bytes=limit, store=_KIT_STORE
    )
    return KitTarget(backend, MemoryKitHooks(backend), engine="Python dicts, in process")


class InMemoryTaskStore(GenericTaskStore):
    """The one-line start: ``store = InMemoryTaskStore()`` keeps tasks in process memory."""

    def __init__(
        self,
        config: StoreConfig | None = None,
        *,
        clock: Clock = time.time,
        backend: InMemoryBackend | None = None,
    ) -> None:
        super().__init__(
            backend if backend is not None else InMemoryBackend(clock=clock), config, clock
        )
