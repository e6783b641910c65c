"""Backends that break one clause each in a way only sequences or races reveal.

Each is an :class:`InMemoryBackend` with one method changed; the tests prove that the kit's
state machine or race fuzzing catches it and names the clause.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from pmcp_tasks.backend import Clock, VersionedRecord
from pmcp_tasks.errors import BackendError, VersionConflict
from pmcp_tasks.keys import check_prefix, split_key
from reference_backends.memory import InMemoryBackend, MemoryStore, _Partition


def factory_for(cls: type[InMemoryBackend]) -> Callable[..., InMemoryBackend]:
    """A kit factory whose backends share one store, so second clients see the same data."""
    store = MemoryStore()

    def factory(*, namespace: str, clock: Clock) -> InMemoryBackend:
        return cls(namespace=namespace, clock=clock, store=store)

    return factory


class ExpiryOffByOne(InMemoryBackend):
    """KV-LIVE-1: a record is still live at ``clock() == expires_at``."""

    def _live(self, part: _Partition | None, item: str, now: float) -> VersionedRecord | None:
        record = None if part is None else part.records.get(item)
        if record is None or (record.expires_at is not None and now > record.expires_at):
            return None
        return record


class AfterInclusive(InMemoryBackend):
    """KV-LIST-4: ``after`` is treated as inclusive."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        everything = await super().list_by_prefix(prefix)
        page = [(key, rec) for key, rec in everything if after is None or key >= after]
        return page if limit is None else page[:limit]


class LimitBeforeExpiry(InMemoryBackend):
    """KV-LIST-5: cuts the page at ``limit`` before dropping expired records (short pages)."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        partition, item_prefix = check_prefix(prefix)
        part = self._partitions.get(partition)
        if part is None:
            return []
        items = [
            item
            for item in part.items
            if item.startswith(item_prefix) and (after is None or f"{partition}:{item}" > after)
        ]
        now = self._clock()
        page = []
        for item in items if limit is None else items[:limit]:
            record = self._live(part, item, now)
            if record is not None:
                page.append((f"{partition}:{item}", record))
        return page


class CleanupHidesRecords(InMemoryBackend):
    """KV-CLEAN-2: clean-up only marks records, which come back when the clock goes back."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hidden: set[tuple[str, str]] = set()

    def _write(self, partition: str, item: str, record: VersionedRecord) -> None:
        self._hidden.discard((partition, item))
        super()._write(partition, item, record)

    async def cleanup_expired(self) -> int:
        now = self._clock()
        expired = {
            (partition, item)
            for partition, part in self._partitions.items()
            for item, record in part.records.items()
            if record.expires_at is not None and now >= record.expires_at
        }
        counted = len(expired - self._hidden)
        self._hidden |= expired
        return counted


class ConflictReportsExpected(InMemoryBackend):
    """KV-CAS-3: ``VersionConflict.actual`` echoes the expected version, not the stored one."""

    async def put_if_version(
        self,
        key: str,
        data: bytes,
        expected_version: int,
        *,
        expires_at: float | None = None,
    ) -> int:
        try:
            return await super().put_if_version(key, data, expected_version, expires_at=expires_at)
        except VersionConflict as exc:
            raise VersionConflict(key, expected_version, expected_version) from exc


class VersionSurvivesExpiry(InMemoryBackend):
    """KV-LIVE-2: ``put`` over an expired record continues its version instead of 1."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        partition, item = split_key(key)
        part = self._partitions.get(partition)
        stored = None if part is None else part.records.get(item)
        version = 1 if stored is None else stored.version + 1
        with self._lock:
            self._write(partition, item, VersionedRecord(data, version, expires_at))
        return version


class CasKeepsExpiry(InMemoryBackend):
    """KV-LIVE-4: a successful CAS keeps the old ``expires_at`` instead of the one given."""

    async def put_if_version(
        self,
        key: str,
        data: bytes,
        expected_version: int,
        *,
        expires_at: float | None = None,
    ) -> int:
        current = await self.get(key)
        if current is not None:
            expires_at = current.expires_at
        return await super().put_if_version(key, data, expected_version, expires_at=expires_at)


class DeleteCountsExpired(InMemoryBackend):
    """KV-LIVE-2: ``delete`` of an expired record that is still stored answers True."""

    async def delete(self, key: str) -> bool:
        partition, item = split_key(key)
        part = self._partitions.get(partition)
        stored = part is not None and item in part.records
        await super().delete(key)
        return stored


class LosesReplies(InMemoryBackend):
    """Not broken: every third write raises ``BackendError`` after (or, alternately, before)
    taking effect, like a timeout on a real network. Outcomes are unknown, not wrong."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._writes = 0

    async def _maybe_lose(self, write: Callable[[], Awaitable[int]]) -> int:
        self._writes += 1
        if self._writes % 3:
            return await write()
        if self._writes % 2:
            await write()
        raise BackendError("no reply from the store") from ConnectionError("timed out")

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        write = InMemoryBackend.put
        return await self._maybe_lose(lambda: write(self, key, data, expires_at=expires_at))

    async def put_if_version(
        self,
        key: str,
        data: bytes,
        expected_version: int,
        *,
        expires_at: float | None = None,
    ) -> int:
        write = InMemoryBackend.put_if_version
        return await self._maybe_lose(
            lambda: write(self, key, data, expected_version, expires_at=expires_at)
        )


class NeverExpires(InMemoryBackend):
    """Ignores the clock it is given: nothing ever expires. Broken while it claims
    ``injectable_clock``; honest (if useless for TTLs) when it declares it does not."""

    declares_injectable_clock = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**kwargs, "clock": lambda: float("-inf")})
        self.capabilities = replace(
            self.capabilities, injectable_clock=self.declares_injectable_clock
        )


class NeverExpiresDeclared(NeverExpires):
    declares_injectable_clock = False
