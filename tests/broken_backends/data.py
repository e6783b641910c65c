"""Broken backends for stored data and versions kept exactly: bytes as text, versions through a
float.

``conformance/suite/test_data.py`` must fail each one on the clause its ``@zoo`` declares
(``tests/kit/test_teeth.py``).
"""

from __future__ import annotations

from dataclasses import replace

from pmcp_tasks.backend import VersionedRecord
from pmcp_tasks.keys import check_data, check_expected_version, check_expires_at

from .base import Seedable, zoo


@zoo("utf8_mangling", breaks="KV-DATA-1")
class Utf8Mangling(Seedable):
    """Stores data as text, as a naive JSON or Lua layer would."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        text = check_data(data).decode("utf-8", errors="replace")
        return await super().put(key, text.encode("utf-8"), expires_at=expires_at)


@zoo("float_versions", breaks="KV-VER-1")
class FloatVersions(Seedable):
    """Keeps versions as floats (as a Lua script would): exact only up to 2**53."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        current = await self.get(key)
        version = await super().put(key, data, expires_at=expires_at)
        if current is None:
            return version
        version = int(float(current.version) + 1.0)
        await self.seed(key, data, version, check_expires_at(expires_at))
        return version


@zoo("versions_listed_as_floats", breaks="KV-VER-1")
class VersionsListedAsFloats(Seedable):
    """list_by_prefix passes versions through a float (a JSON layer of doubles)."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        found = await super().list_by_prefix(prefix, after=after, limit=limit)
        return [(k, replace(r, version=int(float(r.version)))) for k, r in found]


@zoo("cas_compares_floats", breaks="KV-VER-1")
class CasComparesFloats(Seedable):
    """put_if_version compares versions as floats (as a Lua script would): next to 2**53 a
    stale expected version matches and wins."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        current = await self.get(key)
        if current is not None and float(current.version) == float(
            check_expected_version(expected_version)
        ):
            expected_version = current.version
        return await super().put_if_version(key, data, expected_version, expires_at=expires_at)


@zoo("list_truncates_large_data", breaks="KV-DATA-1")
class ListTruncatesLargeData(Seedable):
    """list_by_prefix returns at most 64 KiB of each record's data (a response buffer)."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        found = await super().list_by_prefix(prefix, after=after, limit=limit)
        return [(k, replace(r, data=r.data[:65536])) for k, r in found]
