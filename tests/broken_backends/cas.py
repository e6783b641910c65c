"""Broken backends for compare-and-set: a read-then-write CAS, wrong conflicts, a create that
overwrites.

``conformance/suite/test_cas.py`` must fail each one on the clause its ``@zoo`` declares
(``tests/kit/test_teeth.py``).
"""

from __future__ import annotations

import anyio
import anyio.lowlevel

from pmcp_tasks.backend import VersionedRecord
from pmcp_tasks.errors import RecordNotFound, VersionConflict
from pmcp_tasks.keys import check_data
from pmcp_tasks.keys import split_key as split

from .base import Seedable, zoo


@zoo("cas_read_await_write", breaks="KV-CAS-5")
class CasReadAwaitWrite(Seedable):
    """CAS as get, then an await (a network round trip), then an unconditional write."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        current = await self.get(key)
        await anyio.lowlevel.checkpoint()
        if current is None and expected_version != 0:
            raise RecordNotFound(key)
        if current is not None and current.version != expected_version:
            raise VersionConflict(key, expected_version, current.version)
        partition, item = split(key)
        with self.inside.lock:
            self.inside.write(
                partition, item, VersionedRecord(data, expected_version + 1, expires_at)
            )
        return expected_version + 1


@zoo("not_found_as_conflict", breaks="KV-CAS-2")
class NotFoundAsConflict(Seedable):
    """Reports a CAS on an absent key as ``VersionConflict(actual=0)``."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        try:
            return await super().put_if_version(key, data, expected_version, expires_at=expires_at)
        except RecordNotFound:
            raise VersionConflict(key, expected_version, 0) from None


@zoo("wrong_actual", breaks="KV-CAS-3")
class WrongActual(Seedable):
    """Reports the expected version as ``actual`` in a conflict."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        try:
            return await super().put_if_version(key, data, expected_version, expires_at=expires_at)
        except VersionConflict as exc:
            raise VersionConflict(key, expected_version, expected_version + 1) from exc


@zoo("create_overwrites", breaks="KV-CAS-1")
class CreateOverwrites(Seedable):
    """``expected_version=0`` overwrites an existing record instead of conflicting."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        if expected_version == 0:
            return await self.put(key, data, expires_at=expires_at)
        return await super().put_if_version(key, data, expected_version, expires_at=expires_at)


@zoo("conflict_still_writes", breaks="KV-CAS-3")
class ConflictStillWrites(Seedable):
    """Writes the data, then raises the conflict it should have raised instead."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        current = await self.get(key)
        if current is not None and current.version != expected_version:
            await self.seed(key, check_data(data), current.version, expires_at)
        return await super().put_if_version(key, data, expected_version, expires_at=expires_at)
