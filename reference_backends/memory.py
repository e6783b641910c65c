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

import asyncio
import bisect
import heapq
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


SLICE = 1000
"""Index entries a listing or a clean-up handles per hold of the lock, before it lets the
event loop run: 100,000 dead records are 100 short steps, not one long block."""


@dataclass(slots=True)
class _Partition:
    """One partition's records and the sorted index that listings walk.

    Removing an entry from the middle of a sorted list moves everything after it, so 100,000
    removals took seconds. Entries are therefore left in ``items`` when their record goes
    (*gaps*: removed records, and dead ones a listing met and *parked* so that no later
    listing walks them again), and dropped all at once when they are as many as the listed
    entries: O(1) amortised per removal. ``gaps`` and ``dropped`` say which items have an entry
    without a record and which parked records have none, so a write never adds an entry twice.
    ``revive`` finds the parked records that a clock moved back has made live again
    (KV-LIVE-3), latest expiry first.
    """

    items: list[str] = field(default_factory=list)  # sorted item parts of the keys, and gaps
    records: dict[str, VersionedRecord] = field(default_factory=dict)
    gaps: set[str] = field(default_factory=set)  # items with an entry but no record
    parked: dict[str, float] = field(default_factory=dict)  # item -> its record's expiry
    dropped: set[str] = field(default_factory=set)  # parked items without an entry
    revive: list[tuple[float, str]] = field(default_factory=list)  # heap of (-expiry, item)

    def listed(self, item: str) -> bool:
        return item in self.records and item not in self.parked

    def add(self, item: str, record: VersionedRecord) -> VersionedRecord | None:
        """Store ``record`` and list it; returns the record it replaced."""
        previous = self.records.get(item)
        self.records[item] = record
        if previous is None:
            if item in self.gaps:
                self.gaps.discard(item)
            else:
                bisect.insort(self.items, item)
        elif item in self.parked:
            self._unpark(item)
        return previous

    def remove(self, item: str) -> None:
        del self.records[item]
        if self.parked.pop(item, None) is not None and item in self.dropped:
            self.dropped.discard(item)
        else:
            self.gaps.add(item)
        self._compact()

    def park(self, dead: list[tuple[str, float]]) -> None:
        """Take dead records (item, expiry) off the listings until a clock moves back."""
        for item, expires_at in dead:
            self.parked[item] = expires_at
            heapq.heappush(self.revive, (-expires_at, item))
        self._compact()

    def unpark_live(self, now: float) -> None:
        """Parked records live again at ``now`` go back on the index (normally none)."""
        while self.revive and -self.revive[0][0] > now:
            expiry, item = heapq.heappop(self.revive)
            if self.parked.get(item) == -expiry:
                self._unpark(item)

    def _unpark(self, item: str) -> None:
        del self.parked[item]
        if item in self.dropped:
            self.dropped.discard(item)
            bisect.insort(self.items, item)

    def _compact(self) -> None:
        """Drop the gaps once they are as many as the listed entries, in one O(n) pass."""
        if len(self.items) > 2 * (len(self.records) - len(self.parked)) + 64:
            self.items = [item for item in self.items if self.listed(item)]
            self.gaps.clear()
            self.dropped = set(self.parked)
        if len(self.revive) > 2 * len(self.parked) + 64:
            self.revive = [(-expiry, item) for item, expiry in self.parked.items()]
            heapq.heapify(self.revive)


@dataclass(slots=True)
class _Namespace:
    """A namespace's partitions, and its expiry queue: ``cleanup_expired`` takes the records
    that died from the front instead of reading every record (O(removed), not O(stored))."""

    partitions: dict[str, _Partition] = field(default_factory=dict)
    expiries: list[tuple[float, str, str]] = field(default_factory=list)  # (expiry, part, item)


class MemoryStore:
    """The shared state behind one or more :class:`InMemoryBackend` instances."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.namespaces: dict[str, _Namespace] = {}

    def namespace(self, name: str) -> _Namespace:
        with self.lock:
            return self.namespaces.setdefault(name, _Namespace())


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
        self._namespace = self._store.namespace(namespace)
        self._partitions = self._namespace.partitions
        self._clock = clock
        self.capabilities = BackendCapabilities(
            max_record_bytes=max_record_bytes, shared_in_process=True, injectable_clock=True
        )

    async def server_time(self) -> float:
        """This backend's clock: in one process, the memory *is* the server
        (:class:`pmcp_tasks.timebase.ServerClock`)."""
        return self._clock()

    def live_record(self, part: _Partition | None, item: str, now: float) -> VersionedRecord | None:
        """The record at ``item`` of ``part`` if it is live at ``now``: the one place this
        backend judges liveness, which a subclass may override (a broken backend does)."""
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
        previous = part.add(item, record)
        expiry = record.expires_at
        if expiry is not None and (previous is None or previous.expires_at != expiry):
            heapq.heappush(self._namespace.expiries, (expiry, partition, item))

    def _remove(self, partition: str, item: str) -> None:
        part = self._partitions[partition]
        part.remove(item)
        if not part.records:
            del self._partitions[partition]

    async def _get(self, key: str) -> VersionedRecord | None:
        partition, item = split_key(key)
        now = self._clock()
        with self._lock:
            return self.live_record(self._partitions.get(partition), item, now)

    async def _put(self, key: str, data: bytes, expires_at: float | None) -> int:
        partition, item = split_key(key)
        now = self._clock()
        with self._lock:
            current = self.live_record(self._partitions.get(partition), item, now)
            version = 1 if current is None else next_version(key, current.version)
            self._write(partition, item, VersionedRecord(data, version, expires_at))
        return version

    async def _put_if_version(
        self, key: str, data: bytes, expected_version: int, expires_at: float | None
    ) -> int:
        partition, item = split_key(key)
        now = self._clock()
        with self._lock:
            current = self.live_record(self._partitions.get(partition), item, now)
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
            live = self.live_record(part, item, now) is not None
            self._remove(partition, item)
            return live

    async def _list(
        self, partition: str, item_prefix: str, after_item: str | None, limit: int | None
    ) -> list[tuple[str, VersionedRecord]]:
        """The page, walked :data:`SLICE` index entries per hold of the lock.

        A dead record met on the way is parked, so the next listing does not walk it again;
        between slices the event loop runs and other calls may change the partition, so each
        slice finds its place again by bisecting from the last item walked.
        """
        now = self._clock()
        out: list[tuple[str, VersionedRecord]] = []
        walked = after_item
        first = True
        while True:
            with self._lock:
                part = self._partitions.get(partition)
                if part is None:
                    return out
                if first:
                    part.unpark_live(now)
                    first = False
                start = bisect.bisect_left(part.items, item_prefix)
                if walked is not None:
                    start = max(start, bisect.bisect_right(part.items, walked))
                walked, done = self._list_slice(partition, start, item_prefix, now, limit, out)
                if done:
                    return out
            await asyncio.sleep(0)

    def _list_slice(
        self,
        partition: str,
        start: int,
        item_prefix: str,
        now: float,
        limit: int | None,
        out: list[tuple[str, VersionedRecord]],
    ) -> tuple[str | None, bool]:
        """Up to :data:`SLICE` entries from ``start`` into ``out``: the last item walked, and
        whether the page is done. Dead records are parked after the walk, since parking may
        compact the index under it. Records go through ``live_record``, like every read."""
        part = self._partitions[partition]
        dead: list[tuple[str, float]] = []
        walked: str | None = None
        done = True
        for index in range(start, min(len(part.items), start + SLICE)):
            item = walked = part.items[index]
            if not item.startswith(item_prefix):
                break
            if not part.listed(item):
                continue
            record = self.live_record(part, item, now)
            if record is None:
                expiry = part.records[item].expires_at
                if expiry is not None and not is_live(expiry, now):
                    dead.append((item, expiry))
                continue
            out.append((partition + ":" + item, record))
            if limit is not None and len(out) >= limit:
                break
        else:
            done = start + SLICE >= len(part.items)
        part.park(dead)
        return walked, done

    async def _cleanup(self) -> int:
        """The records dead at the call's time, from the front of the expiry queue.

        An entry whose record was rewritten with another expiry (or removed) since it was
        queued is dropped: the rewrite queued its own.
        """
        now = self._clock()
        removed = 0
        queue = self._namespace.expiries
        while True:
            with self._lock:
                for _ in range(SLICE):
                    if not queue or queue[0][0] > now:
                        return removed
                    expiry, partition, item = heapq.heappop(queue)
                    part = self._partitions.get(partition)
                    record = None if part is None else part.records.get(item)
                    if record is not None and record.expires_at == expiry:
                        self._remove(partition, item)
                        removed += 1
            await asyncio.sleep(0)

    async def aclose(self) -> None:
        """Nothing to release: the records belong to the store, not to this view of it."""


class MemoryInternals:
    """The sanctioned door to an :class:`InMemoryBackend`'s insides; not the public API.

    The conformance kit's hooks (:class:`MemoryKitHooks`) write past the contract, and the
    project's broken backends (tests/broken_backends/) are this backend with one rule broken:
    they read and write its records directly, move its clock, and judge liveness their own way
    (:meth:`InMemoryBackend.live_record`). They do it through this one typed class, so that
    refactoring the backend breaks it loudly. Hold :attr:`lock` around every use of
    :attr:`partitions`, :meth:`write` and :meth:`remove`. Nothing here is stable across releases.
    """

    def __init__(self, backend: InMemoryBackend) -> None:
        self._backend = backend

    @property
    def lock(self) -> threading.Lock:
        """The store's lock, shared by every backend on the same :class:`MemoryStore`."""
        return self._backend._lock

    @property
    def partitions(self) -> dict[str, _Partition]:
        """This namespace's partitions by name; each holds ``records`` by item."""
        return self._backend._partitions

    @property
    def clock(self) -> Clock:
        """The clock the backend judges liveness by; a broken backend may swap it for a call."""
        return self._backend._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._backend._clock = clock

    def raw(self, key: str) -> VersionedRecord | None:
        """The stored record at ``key``, live or not (take :attr:`lock` around it)."""
        partition, item = split_key(key)
        part = self._backend._partitions.get(partition)
        return None if part is None else part.records.get(item)

    def write(self, partition: str, item: str, record: VersionedRecord) -> None:
        """Store ``record`` as it is, any version, and queue its expiry."""
        self._backend._write(partition, item, record)

    def remove(self, partition: str, item: str) -> None:
        """Forget a stored record (it must exist)."""
        self._backend._remove(partition, item)

    def clear(self) -> None:
        """Forget every record of this namespace."""
        self._backend._partitions.clear()
        self._backend._namespace.expiries.clear()


class MemoryKitHooks:
    """The conformance kit's hooks for an :class:`InMemoryBackend` (conformance/harness.py).

    They write past the contract (any version, a whole namespace at once), which is why they
    live here beside the kit factory and not on the backend. There is no ``plant_damaged``:
    this backend keeps ``VersionedRecord`` objects, not encoded bytes, so nothing it stores can
    fail to decode.
    """

    def __init__(self, backend: InMemoryBackend) -> None:
        self.inside = MemoryInternals(backend)

    async def seed(self, key: str, data: bytes, version: int, expires_at: float | None) -> None:
        """Store any version, so KV-VER-1 is testable next to 2**53 and 2**63-1."""
        partition, item = split_key(check_key(key))
        record = VersionedRecord(check_data(data), version, check_expires_at(expires_at))
        with self.inside.lock:
            self.inside.write(partition, item, record)

    async def drop_namespace(self) -> None:
        """Forget this namespace's records so that kit runs do not accumulate."""
        with self.inside.lock:
            self.inside.clear()


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
