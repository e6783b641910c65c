"""Broken backends for ``shared=True``: what one client wrote, another sees.

``conformance/suite/test_shared.py`` must fail each one on the clause its ``@zoo`` declares
(``tests/kit/test_teeth.py``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pmcp_tasks.backend import Clock, VersionedRecord, is_live
from pmcp_tasks.keys import check_expires_at
from reference_backends.memory import InMemoryBackend, MemoryStore

from .base import Seedable, zoo


@zoo("fake_shared", breaks="KV-SHARED-1")
class FakeShared(Seedable):
    """Declares ``shared=True`` but every instance keeps its own private store."""

    def __init__(self, *, namespace: str, clock: Clock) -> None:
        InMemoryBackend.__init__(self, namespace=namespace, clock=clock, store=MemoryStore())


@zoo("expiry_kept_client_side", breaks="KV-SHARED-1")
class ExpiryKeptClientSide(Seedable):
    """Keeps expiries in a dict of the client that wrote them; the shared store holds the
    records without one, so every other client sees them live forever."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._expiries: dict[str, float | None] = {}

    def _seen(self, key: str, record: VersionedRecord | None) -> VersionedRecord | None:
        if record is None or key not in self._expiries:
            return record
        expires_at = self._expiries[key]
        if not is_live(expires_at, self.inside.clock()):
            return None
        return replace(record, expires_at=expires_at)

    async def get(self, key: str) -> VersionedRecord | None:
        return self._seen(key, await super().get(key))

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        if await self.get(key) is None:
            await super().delete(key)
        version = await super().put(key, data)
        self._expiries[key] = check_expires_at(expires_at)
        return version

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        if await self.get(key) is None:
            await super().delete(key)
        version = await super().put_if_version(key, data, expected_version)
        self._expiries[key] = check_expires_at(expires_at)
        return version

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        found = await super().list_by_prefix(prefix, after=after)
        seen = [(k, self._seen(k, r)) for k, r in found]
        live = [(k, r) for k, r in seen if r is not None]
        return live if limit is None else live[:limit]
