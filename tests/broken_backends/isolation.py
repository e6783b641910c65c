"""Broken backends for namespaces: one namespace's records seen or removed from another.

``conformance/suite/test_isolation.py`` must fail each one on the clause its ``@zoo`` declares
(``tests/kit/test_teeth.py``).
"""

from __future__ import annotations

from typing import Any

from pmcp_tasks.backend import Clock, VersionedRecord, is_live
from pmcp_tasks.errors import RecordNotFound, VersionConflict
from pmcp_tasks.keys import check_key, check_page, check_prefix

from .base import Seedable, zoo


@zoo("shared_namespaces", breaks="KV-ISO-1")
class SharedNamespaces(Seedable):
    """Ignores the namespace: every instance sees every namespace's records."""

    def __init__(self, *, namespace: str, clock: Clock) -> None:
        super().__init__(namespace="everyone", clock=clock)


@zoo("namespace_joined_without_separator", breaks="KV-ISO-1")
class NamespaceJoinedWithoutSeparator(Seedable):
    """Stores ``namespace + key`` in one keyspace and cleans up by namespace prefix, so
    namespaces ``ns`` and ``nsp`` share keys (``ns`` + ``pq:k`` == ``nsp`` + ``q:k``)."""

    def __init__(self, *, namespace: str, **kwargs: Any) -> None:
        super().__init__(namespace="joined", **kwargs)
        self._prefix = namespace

    def _in(self, key: str) -> str:
        check_key(key)
        return self._prefix + key

    async def get(self, key: str) -> VersionedRecord | None:
        return await super().get(self._in(key))

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        return await super().put(self._in(key), data, expires_at=expires_at)

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        try:
            return await super().put_if_version(
                self._in(key), data, expected_version, expires_at=expires_at
            )
        except VersionConflict as exc:
            raise VersionConflict(key, exc.expected, exc.actual) from None
        except RecordNotFound:
            raise RecordNotFound(key) from None

    async def delete(self, key: str) -> bool:
        return await super().delete(self._in(key))

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        check_prefix(prefix)
        after, limit = check_page(after, limit)
        inner = None if after is None else self._prefix + after
        found = await super().list_by_prefix(self._prefix + prefix, after=inner, limit=limit)
        return [(key[len(self._prefix) :], record) for key, record in found]

    async def cleanup_expired(self) -> int:
        now = self.inside.clock()
        removed = 0
        with self.inside.lock:
            for partition, part in list(self.inside.partitions.items()):
                if not partition.startswith(self._prefix):
                    continue
                for item, record in list(part.records.items()):
                    if not is_live(record.expires_at, now):
                        self.inside.remove(partition, item)
                        removed += 1
        return removed

    async def seed(self, key: str, data: bytes, version: int, expires_at: float | None) -> None:
        await super().seed(self._in(key), data, version, expires_at)
