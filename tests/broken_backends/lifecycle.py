"""Broken backends for operations besides single calls: cancellation, close and reopen, paging by
position.

``conformance/suite/test_lifecycle.py`` must fail each one on the clause its ``@zoo`` declares
(``tests/kit/test_teeth.py``).
"""

from __future__ import annotations

import asyncio
import bisect
import os
from typing import Any

import anyio
import anyio.lowlevel

from pmcp_tasks.backend import VersionedRecord, is_live
from pmcp_tasks.keys import check_data

from .base import Seedable, zoo


@zoo("cancel_half_write", breaks="KV-CANCEL-1")
class CancelHalfWrite(Seedable):
    """Writes the new data, then (one round trip later) the new version: a cancellation in
    between leaves the new data under the old version."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        current = await self.get(key)
        version = 1 if current is None else current.version + 1
        await self.seed(key, check_data(data), max(version - 1, 1), expires_at)
        await anyio.lowlevel.checkpoint()
        await self.seed(key, data, version, expires_at)
        return version


@zoo("cancel_leaves_lock_held", breaks="KV-CANCEL-1")
class CancelLeavesLockHeld(Seedable):
    """Serialises writes with a lock it releases only on success, not on cancellation."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._write_lock = anyio.Lock()

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        await self._write_lock.acquire()
        await anyio.lowlevel.checkpoint()  # the round trip
        version = await super().put(key, data, expires_at=expires_at)
        self._write_lock.release()
        return version


@zoo("cancelled_write_lands_later", breaks="KV-CANCEL-1")
class CancelledWriteLandsLater(Seedable):
    """Sends each write from a task of its own and shields it, so a cancelled caller returns
    at once while the write still lands afterwards (a thread-pool call left running)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pending: set[asyncio.Task[int]] = set()

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        async def send() -> int:
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
            return await Seedable.put(self, key, data, expires_at=expires_at)

        task = asyncio.ensure_future(send())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return await asyncio.shield(task)


_OPEN_CLIENTS: dict[str, int] = {}


@zoo("reopen_loses_writes", breaks="KV-CLOSE-2")
class ReopenLosesWrites(Seedable):
    """Keeps a namespace's records only while a client of it is open (a cache that is the
    store): a client opened after all have closed starts empty."""

    def __init__(self, *, namespace: str, **kwargs: Any) -> None:
        super().__init__(namespace=namespace, **kwargs)
        self._name_held = namespace
        self._closed = False
        _OPEN_CLIENTS[namespace] = _OPEN_CLIENTS.get(namespace, 0) + 1

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        _OPEN_CLIENTS[self._name_held] -= 1
        if not _OPEN_CLIENTS[self._name_held]:
            await self.drop_namespace()


@zoo("aclose_leaves_task_running", breaks="KV-CLOSE-1")
class AcloseLeavesTaskRunning(Seedable):
    """Starts a keep-alive task per client and never stops it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._keepalive: asyncio.Task[None] | None = None

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        if self._keepalive is None:
            self._keepalive = asyncio.ensure_future(asyncio.Event().wait())
        return await super().put(key, data, expires_at=expires_at)


_LEAKED_FDS: list[int] = []


@zoo("aclose_leaves_descriptors_open", breaks="KV-CLOSE-1")
class AcloseLeavesDescriptorsOpen(Seedable):
    """Opens a pipe per client (its connection) and never closes it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _LEAKED_FDS.extend(os.pipe())


@zoo("listing_by_position", breaks="KV-LIST-5")
class ListingByPosition(Seedable):
    """Pages internally by position: it finds where ``after`` ranks once, then reads two
    items at a time by offset into the sorted keys (a storage's rank, or SQL's OFFSET), one
    round trip each, so a delete before the offset meanwhile shifts an untouched record past
    it."""

    def _ranked(self, partition: str, item_prefix: str) -> list[str]:
        part = self.inside.partitions.get(partition)
        items = [] if part is None else part.records
        return sorted(item for item in items if item.startswith(item_prefix))

    async def _list(
        self, partition: str, item_prefix: str, after_item: str | None, limit: int | None
    ) -> list[tuple[str, VersionedRecord]]:
        ranked = self._ranked(partition, item_prefix)
        offset = 0 if after_item is None else bisect.bisect_right(ranked, after_item)
        out: list[tuple[str, VersionedRecord]] = []
        while limit is None or len(out) < limit:
            batch = self._ranked(partition, item_prefix)[offset : offset + 2]
            if not batch:
                break
            part = self.inside.partitions.get(partition)
            for item in batch:
                record = self.live_record(part, item, self.inside.clock())
                if record is not None and (limit is None or len(out) < limit):
                    out.append((f"{partition}:{item}", record))
            offset += len(batch)
            await anyio.lowlevel.checkpoint()
        return out


@zoo("cleanup_misses_cas_expiries", breaks="KV-CLEAN-1")
class CleanupMissesCasExpiries(Seedable):
    """Keeps its expiry index up to date on ``put`` only; records that a ``put_if_version``
    gave an expiry are never cleaned up."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        version = await super().put_if_version(key, data, expected_version, expires_at=expires_at)
        if expires_at is not None:
            _UNINDEXED.add(key)
        return version

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        _UNINDEXED.discard(key)
        return await super().put(key, data, expires_at=expires_at)

    async def _cleanup(self) -> int:
        now = self.inside.clock()
        removed = 0
        with self.inside.lock:
            for partition, part in list(self.inside.partitions.items()):
                for item, record in list(part.records.items()):
                    if f"{partition}:{item}" in _UNINDEXED:
                        continue
                    if not is_live(record.expires_at, now):
                        self.inside.remove(partition, item)
                        removed += 1
        return removed


_UNINDEXED: set[str] = set()
