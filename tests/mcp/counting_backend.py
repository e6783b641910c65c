"""A storage backend that counts what reaches the storage beneath it.

The progress and expiry tests count store writes and records held, not time: the counts say
what a rate limit or a sweep did, however slow the machine.
"""

from __future__ import annotations

import asyncio

from pmcp_tasks.backend import StorageBackend, VersionedRecord


class CountingBackend:
    """Passes every call to ``inner``; counts writes, new records and swept ones."""

    def __init__(self, inner: StorageBackend) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities
        self.writes = 0
        """``put_if_version`` calls (every store write goes through it)."""
        self.created = 0
        """Records written where none was (``expected_version`` 0, acknowledged)."""
        self.removed = 0
        """Records ``delete`` or ``cleanup_expired`` removed."""
        self.sweeps = 0
        self.sweeping = 0
        self.most_sweeping = 0
        """The most ``cleanup_expired`` calls in flight at once."""

    @property
    def held(self) -> int:
        """Records physically held: expired ones count until something removes them."""
        return self.created - self.removed

    async def get(self, key: str) -> VersionedRecord | None:
        return await self.inner.get(key)

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        raise AssertionError("the task store writes with put_if_version only")

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        self.writes += 1
        version = await self.inner.put_if_version(
            key, data, expected_version, expires_at=expires_at
        )
        if expected_version == 0:
            self.created += 1
        return version

    async def delete(self, key: str) -> bool:
        deleted = await self.inner.delete(key)
        self.removed += int(deleted)
        return deleted

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        return await self.inner.list_by_prefix(prefix, after=after, limit=limit)

    async def cleanup_expired(self) -> int:
        self.sweeps += 1
        self.sweeping += 1
        self.most_sweeping = max(self.most_sweeping, self.sweeping)
        try:
            await asyncio.sleep(0)  # let other requests in while this sweep is under way
            removed = await self.inner.cleanup_expired()
        finally:
            self.sweeping -= 1
        self.removed += removed
        return removed

    async def aclose(self) -> None:
        await self.inner.aclose()
