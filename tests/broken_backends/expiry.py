"""Broken backends for expiry and clean-up: liveness, the injected clock, what ``cleanup_expired``
removes and counts.

``conformance/suite/test_expiry.py`` must fail each one on the clause its ``@zoo`` declares
(``tests/kit/test_teeth.py``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import anyio
import anyio.lowlevel

from pmcp_tasks.backend import Clock, VersionedRecord, is_live
from pmcp_tasks.errors import VersionConflict
from pmcp_tasks.keys import check_data, check_expires_at, check_key
from pmcp_tasks.keys import split_key as split

from .base import FrozenClock, Seedable, zoo


@zoo("get_shows_expired", breaks="KV-LIVE-2")
class GetShowsExpired(Seedable):
    """get forgets the liveness check; every other method is right."""

    async def get(self, key: str) -> VersionedRecord | None:
        check_key(key)
        with self.inside.lock:
            return self.inside.raw(key)


@zoo("list_shows_expired", breaks="KV-LIVE-2")
class ListShowsExpired(Seedable):
    """list_by_prefix forgets the liveness check."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        future = FrozenClock(float("-inf"))
        saved, self.inside.clock = self.inside.clock, future
        try:
            return await super().list_by_prefix(prefix, after=after, limit=limit)
        finally:
            self.inside.clock = saved


@zoo("clock_ignored", breaks="KV-LIVE-3")
class ClockIgnored(Seedable):
    """Decides expiry on the real clock instead of the injected one."""

    def __init__(self, *, namespace: str, clock: Clock) -> None:
        super().__init__(namespace=namespace, clock=time.time)


@zoo("boundary_off_by_one", breaks="KV-LIVE-1")
class BoundaryOffByOne(Seedable):
    """Counts a record as live at ``clock() == expires_at``."""

    def __init__(self, *, clock: Clock, **kwargs: Any) -> None:
        super().__init__(clock=lambda: clock() - 1e-3, **kwargs)


@zoo("delete_true_for_expired", breaks="KV-LIVE-2")
class DeleteTrueForExpired(Seedable):
    """delete returns True whenever a record was stored, live or not."""

    async def delete(self, key: str) -> bool:
        check_key(key)
        present = self.inside.raw(key) is not None
        await super().delete(key)
        return present


@zoo("cleanup_miscounts", breaks="KV-CLEAN-1")
class CleanupMiscounts(Seedable):
    """cleanup_expired reports the records it looked at, not the ones it removed."""

    async def cleanup_expired(self) -> int:
        with self.inside.lock:
            examined = sum(len(part.records) for part in self.inside.partitions.values())
        await super().cleanup_expired()
        return examined


@zoo("cleanup_only_counts", breaks="KV-CLEAN-2")
class CleanupOnlyCounts(Seedable):
    """cleanup_expired counts dead records but leaves them stored (they revive later)."""

    async def cleanup_expired(self) -> int:
        now = self.inside.clock()
        with self.inside.lock:
            return sum(
                not is_live(record.expires_at, now)
                for part in self.inside.partitions.values()
                for record in part.records.values()
            )


@zoo("expiry_kept_on_put", breaks="KV-LIVE-4")
class ExpiryKeptOnPut(Seedable):
    """A put without ``expires_at`` keeps the previous expiry."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        current = await self.get(key)
        if expires_at is None and current is not None:
            expires_at = current.expires_at
        return await super().put(key, data, expires_at=expires_at)


@zoo("cas_ignores_expiry", breaks="KV-LIVE-2")
class CasIgnoresExpiry(Seedable):
    """put_if_version compares against the stored record even after it expired."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        stored = self.inside.raw(check_key(key))
        if stored is not None and not is_live(stored.expires_at, self.inside.clock()):
            if stored.version != expected_version:
                raise VersionConflict(key, expected_version, stored.version)
            await self.seed(key, check_data(data), expected_version + 1, expires_at)
            return expected_version + 1
        return await super().put_if_version(key, data, expected_version, expires_at=expires_at)


@zoo("cleanup_hides_records", breaks="KV-CLEAN-2")
class CleanupHidesRecords(Seedable):
    """cleanup_expired only marks records, which come back when the clock goes back."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hidden: set[str] = set()

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        self._hidden.discard(key)
        return await super().put(key, data, expires_at=expires_at)

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        version = await super().put_if_version(key, data, expected_version, expires_at=expires_at)
        self._hidden.discard(key)
        return version

    async def cleanup_expired(self) -> int:
        now = self.inside.clock()
        with self.inside.lock:
            expired = {
                f"{partition}:{item}"
                for partition, part in self.inside.partitions.items()
                for item, record in part.records.items()
                if not is_live(record.expires_at, now)
            }
        counted = len(expired - self._hidden)
        self._hidden |= expired
        return counted


@zoo("version_survives_expiry", breaks="KV-LIVE-2")
class VersionSurvivesExpiry(Seedable):
    """put over an expired record continues its version instead of starting at 1."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        stored = self.inside.raw(check_key(key))
        version = 1 if stored is None else stored.version + 1
        await self.seed(key, check_data(data), version, expires_at)
        return version


@zoo("cas_keeps_expiry", breaks="KV-LIVE-4")
class CasKeepsExpiry(Seedable):
    """A successful CAS keeps the old ``expires_at`` instead of the one it was given."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        current = await self.get(key)
        if current is not None:
            expires_at = current.expires_at
        return await super().put_if_version(key, data, expected_version, expires_at=expires_at)


@zoo("never_expires", breaks="KV-LIVE-1")
class NeverExpires(Seedable):
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


@zoo("expiry_in_milliseconds", breaks="KV-LIVE-4")
class ExpiryInMilliseconds(Seedable):
    """Stores ``expires_at`` rounded to milliseconds (as ``PEXPIREAT`` would keep it)."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        return await super().put(key, data, expires_at=_ms(check_expires_at(expires_at)))

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        rounded = _ms(check_expires_at(expires_at))
        return await super().put_if_version(key, data, expected_version, expires_at=rounded)


def _ms(expires_at: float | None) -> float | None:
    return None if expires_at is None else round(expires_at * 1000) / 1000


@zoo("liveness_in_milliseconds", breaks="KV-LIVE-1")
class LivenessInMilliseconds(Seedable):
    """Decides liveness on whole milliseconds of clock and expiry (data kept exact)."""

    def live_record(self, part: Any, item: str, now: float) -> VersionedRecord | None:
        record = None if part is None else part.records.get(item)
        if record is None:
            return None
        if record.expires_at is not None and int(now * 1000) >= int(record.expires_at * 1000):
            return None
        return record


@zoo("latest_clock_wins", breaks="KV-LIVE-3")
class LatestClockWins(Seedable):
    """Never lets time go back: expiry follows the latest clock reading it has seen."""

    def __init__(self, *, clock: Clock, **kwargs: Any) -> None:
        latest = [float("-inf")]

        def never_back() -> float:
            latest[0] = max(latest[0], clock())
            return latest[0]

        super().__init__(clock=never_back, **kwargs)


@zoo("cleanup_one_batch", breaks="KV-CLEAN-1")
class CleanupOneBatch(Seedable):
    """cleanup_expired removes at most 100 dead records per call (one scan batch)."""

    async def cleanup_expired(self) -> int:
        now = self.inside.clock()
        removed = 0
        with self.inside.lock:
            for partition, part in list(self.inside.partitions.items()):
                for item, record in list(part.records.items()):
                    if removed < 100 and not is_live(record.expires_at, now):
                        self.inside.remove(partition, item)
                        removed += 1
        return removed


@zoo("cleanup_read_await_delete", breaks="KV-CLEAN-1")
class CleanupReadAwaitDelete(Seedable):
    """cleanup_expired finds the dead keys, awaits (a round trip), then deletes those keys
    unconditionally: a record rewritten in between is deleted although it is live."""

    async def cleanup_expired(self) -> int:
        now = self.inside.clock()
        with self.inside.lock:
            dead = [
                (partition, item)
                for partition, part in self.inside.partitions.items()
                for item, record in part.records.items()
                if not is_live(record.expires_at, now)
            ]
        await anyio.lowlevel.checkpoint()
        with self.inside.lock:
            for partition, item in dead:
                part = self.inside.partitions.get(partition)
                if part is not None and item in part.records:
                    self.inside.remove(partition, item)
        return len(dead)


@zoo("cleanup_own_writes_only", breaks="KV-CLEAN-1")
class CleanupOwnWritesOnly(Seedable):
    """cleanup_expired only looks at the keys this client wrote (a client-side index)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._written: set[str] = set()

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        version = await super().put(key, data, expires_at=expires_at)
        self._written.add(key)
        return version

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        version = await super().put_if_version(key, data, expected_version, expires_at=expires_at)
        self._written.add(key)
        return version

    async def cleanup_expired(self) -> int:
        now = self.inside.clock()
        removed = 0
        with self.inside.lock:
            for key in sorted(self._written):
                record = self.inside.raw(key)
                if record is not None and not is_live(record.expires_at, now):
                    self.inside.remove(*split(key))
                    removed += 1
        return removed


@zoo("cleanup_leaves_index_entries", breaks="KV-CLEAN-1")
class CleanupLeavesIndexEntries(Seedable):
    """cleanup_expired deletes the records but not their entries in the sorted key index."""

    async def cleanup_expired(self) -> int:
        now = self.inside.clock()
        removed = 0
        with self.inside.lock:
            for part in self.inside.partitions.values():
                for item, record in list(part.records.items()):
                    if not is_live(record.expires_at, now):
                        del part.records[item]
                        removed += 1
        return removed
