"""Broken backends for input classes (conformance/inputs.py): each breaks on one boundary of one
argument.

``conformance/suite/test_input_domain.py`` must fail each one on the clause its ``@zoo``
declares (``tests/kit/test_teeth.py``).
"""

from __future__ import annotations

from typing import Any

from pmcp_tasks.backend import VersionedRecord
from pmcp_tasks.errors import BackendError, CapacityExceeded
from pmcp_tasks.keys import check_data, check_expires_at, check_key
from pmcp_tasks.keys import split_key as split

from .base import Seedable, zoo


@zoo("item_trailing_dot_stripped", breaks="KV-KEY-1")
class ItemTrailingDotStripped(Seedable):
    """Drops a trailing ``.`` from items, as some file systems do with names."""

    def _item(self, key: str) -> str:
        partition, item = split(check_key(key))
        return f"{partition}:{item.rstrip('.') or item}"

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        return await super().put(self._item(key), data, expires_at=expires_at)

    async def get(self, key: str) -> VersionedRecord | None:
        return await super().get(self._item(key))


@zoo("partition_in_255_characters", breaks="KV-KEY-2")
class PartitionIn255Characters(Seedable):
    """Keeps partitions in a 255-character column: longer ones are cut, so they collide."""

    def _cut(self, key: str) -> str:
        partition, item = split(check_key(key))
        return f"{partition[:255]}:{item}"

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        return await super().put(self._cut(key), data, expires_at=expires_at)

    async def get(self, key: str) -> VersionedRecord | None:
        return await super().get(self._cut(key))


@zoo("after_encoded_strictly", breaks="KV-ARG-4")
class AfterEncodedStrictly(Seedable):
    """Hands ``after`` to a driver that encodes it as strict UTF-8 (lone surrogates fail)."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        if after is not None:
            after.encode("utf-8")
        return await super().list_by_prefix(prefix, after=after, limit=limit)


@zoo("limit_in_int32", breaks="KV-ARG-4")
class LimitInInt32(Seedable):
    """Hands ``limit`` to a storage API that takes a signed 32-bit integer."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        if isinstance(limit, int) and limit >= 2**31:
            raise BackendError(f"limit {limit} does not fit a 32-bit integer")
        return await super().list_by_prefix(prefix, after=after, limit=limit)


@zoo("last_chunk_off_by_one", breaks="KV-DATA-1")
class LastChunkOffByOne(Seedable):
    """Stores data in 64 KiB chunks and loses the last one when it holds a single byte."""

    @staticmethod
    def _chunked(data: bytes) -> bytes:
        size = 65536
        if len(data) > size and len(data) % size == 1:
            return data[:-1]
        return data

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        return await super().put(key, self._chunked(check_data(data)), expires_at=expires_at)

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        chunked = self._chunked(check_data(data))
        return await super().put_if_version(key, chunked, expected_version, expires_at=expires_at)


@zoo("overwrite_counts_old_size", breaks="KV-SIZE-2")
class OverwriteCountsOldSize(Seedable):
    """Declares 1 MiB but, like moto's ``UpdateItem``, counts the old and the new record
    together when one replaces the other, refusing large replacements it should take."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_record_bytes=1 << 20, **kwargs)

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        old = await self.get(key)
        if old is not None and len(old.data) + len(check_data(data)) > 3 << 19:
            raise CapacityExceeded(f"update of {key!r} exceeds the item size")
        return await super().put(key, data, expires_at=expires_at)


@zoo("expiry_clamped_to_year_9999", breaks="KV-LIVE-4")
class ExpiryClampedToYear9999(Seedable):
    """Stores expiries as datetimes, clamping anything past 9999-12-31."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        expires_at = check_expires_at(expires_at)
        if expires_at is not None:
            expires_at = min(expires_at, 253402300799.0)
        return await super().put(key, data, expires_at=expires_at)


@zoo("negative_expiry_never_expires", breaks="KV-LIVE-1")
class NegativeExpiryNeverExpires(Seedable):
    """Reads a negative expiry as "no expiry", like Redis' ``TTL`` of -1."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        expires_at = check_expires_at(expires_at)
        if expires_at is not None and expires_at < 0:
            expires_at = None
        return await super().put(key, data, expires_at=expires_at)


@zoo("death_remembered_on_read", breaks="KV-LIVE-3")
class DeathRememberedOnRead(Seedable):
    """Marks a record dead the first time a read finds it expired, and keeps it dead even
    when the clock goes back (a tombstone cached on read)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._dead: set[str] = set()

    async def get(self, key: str) -> VersionedRecord | None:
        if key in self._dead:
            return None
        found = await super().get(key)
        raw = self.inside.raw(check_key(key))
        if found is None and raw is not None:
            self._dead.add(key)
        return found

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        self._dead.discard(key)
        return await super().put(key, data, expires_at=expires_at)


@zoo("version_in_int32", breaks="KV-VER-1")
class VersionInInt32(Seedable):
    """Counts versions in a signed 32-bit column: past 2**31-1 they wrap around."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        current = await self.get(key)
        if current is None or current.version < 2**31 - 1:
            return await super().put(key, data, expires_at=expires_at)
        wrapped = (current.version + 1 + 2**31) % 2**32 - 2**31
        await self.seed(key, check_data(data), wrapped, check_expires_at(expires_at))
        return wrapped
