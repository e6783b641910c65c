"""Deliberately broken backends: each one breaks exactly one clause of the contract.

They are the kit's teeth: ``test_teeth.py`` runs the kit against each and expects it to fail
on the clause named in ``BROKEN``. Each is the reference backend with one method changed,
written the way a plausible bug would look, not as a caricature.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import anyio
import anyio.lowlevel

from conformance.harness import KitTarget
from pmcp_tasks.backend import Clock, VersionedRecord, is_live
from pmcp_tasks.backend_base import skip_damaged
from pmcp_tasks.errors import BackendError, CapacityExceeded, RecordNotFound, VersionConflict
from pmcp_tasks.keys import (
    check_data,
    check_expected_version,
    check_expires_at,
    check_key,
    check_page,
    check_prefix,
    check_size,
)
from pmcp_tasks.keys import split_key as split
from reference_backends.memory import InMemoryBackend, MemoryKitHooks, MemoryStore

_STORE = MemoryStore()


class Seedable(InMemoryBackend):
    """The reference backend on this module's own store, with the memory kit hooks as methods
    (a broken write uses ``seed`` to store the version it got wrong); the zoo's factories hand
    each backend to the kit as its own hooks."""

    def __init__(
        self,
        *,
        namespace: str,
        clock: Clock,
        max_record_bytes: int | None = None,
        store: MemoryStore | None = None,
    ) -> None:
        super().__init__(
            namespace=namespace,
            clock=clock,
            max_record_bytes=max_record_bytes,
            store=_STORE if store is None else store,
        )

    async def seed(self, key: str, data: bytes, version: int, expires_at: float | None) -> None:
        await MemoryKitHooks(self).seed(key, data, version, expires_at)

    async def drop_namespace(self) -> None:
        await MemoryKitHooks(self).drop_namespace()

    def _raw(self, key: str) -> VersionedRecord | None:
        partition, item = split(key)
        part = self._partitions.get(partition)
        return None if part is None else part.records.get(item)


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
        with self._lock:
            self._write(partition, item, VersionedRecord(data, expected_version + 1, expires_at))
        return expected_version + 1


class PutReadAwaitWrite(Seedable):
    """put as get, await, write version + 1: two concurrent puts can get the same version."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        current = await self.get(key)
        await anyio.lowlevel.checkpoint()
        version = 1 if current is None else current.version + 1
        await self.seed(key, check_data(data), version, expires_at)
        return version


class GetShowsExpired(Seedable):
    """get forgets the liveness check; every other method is right."""

    async def get(self, key: str) -> VersionedRecord | None:
        check_key(key)
        with self._lock:
            return self._raw(key)


class ListShowsExpired(Seedable):
    """list_by_prefix forgets the liveness check."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        future = _FrozenClock(float("-inf"))
        saved, self._clock = self._clock, future
        try:
            return await super().list_by_prefix(prefix, after=after, limit=limit)
        finally:
            self._clock = saved


@dataclass
class _FrozenClock:
    now: float

    def __call__(self) -> float:
        return self.now


class LimitBeforeExpiryFilter(Seedable):
    """Fetches ``limit`` records, then drops the dead ones: short pages mid-listing."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        check_prefix(prefix)
        check_page(after, limit)
        with self._lock:
            everything = [
                (key, record)
                for key, record in self._all()
                if key.startswith(prefix) and (after is None or key > after)
            ]
        page = everything[:limit] if limit is not None else everything
        now = self._clock()
        return [(k, r) for k, r in page if is_live(r.expires_at, now)]

    def _all(self) -> list[tuple[str, VersionedRecord]]:
        return sorted(
            (f"{partition}:{item}", record)
            for partition, part in self._partitions.items()
            for item, record in part.records.items()
        )


class PrefixNotBounded(LimitBeforeExpiryFilter):
    """Lists every key that starts with the prefix minus its ':' (``a:`` also gets ``ab:1``)."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        partition, item_prefix = check_prefix(prefix)
        check_page(after, limit)
        now = self._clock()
        with self._lock:
            found = [
                (key, record)
                for key, record in self._all()
                if key.startswith(partition)
                and key.partition(":")[2].startswith(item_prefix)
                and (after is None or key > after)
                and is_live(record.expires_at, now)
            ]
        return found[:limit] if limit is not None else found


class AfterInclusive(Seedable):
    """Treats ``after`` as inclusive."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        if isinstance(after, str) and after:
            after = after[:-1] + chr(ord(after[-1]) - 1) + "\U0010ffff"
        return await super().list_by_prefix(prefix, after=after, limit=limit)


class ListingUnsorted(Seedable):
    """Returns records newest-first instead of by key."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        found = await super().list_by_prefix(prefix, after=after)
        found.reverse()
        return found[:limit] if limit is not None else found


class Utf8Mangling(Seedable):
    """Stores data as text, as a naive JSON or Lua layer would."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        text = check_data(data).decode("utf-8", errors="replace")
        return await super().put(key, text.encode("utf-8"), expires_at=expires_at)


class Truncating(Seedable):
    """Declares a 1000-byte limit and silently truncates larger records."""

    def __init__(self, *, namespace: str, clock: Clock) -> None:
        super().__init__(namespace=namespace, clock=clock, max_record_bytes=1000)

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        return await super().put(key, check_data(data)[:1000], expires_at=expires_at)

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        return await super().put_if_version(
            key, check_data(data)[:1000], expected_version, expires_at=expires_at
        )


class CapacityOffByOne(Seedable):
    """Rejects a record of exactly ``max_record_bytes``."""

    def __init__(self, *, namespace: str, clock: Clock) -> None:
        super().__init__(namespace=namespace, clock=clock, max_record_bytes=1000)

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        check_size(key, check_data(data) + b"!", 1000)
        return await super().put(key, data, expires_at=expires_at)

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        check_size(key, check_data(data) + b"!", 1000)
        return await super().put_if_version(key, data, expected_version, expires_at=expires_at)


class SharedNamespaces(Seedable):
    """Ignores the namespace: every instance sees every namespace's records."""

    def __init__(self, *, namespace: str, clock: Clock) -> None:
        super().__init__(namespace="everyone", clock=clock)


class ClockIgnored(Seedable):
    """Decides expiry on the real clock instead of the injected one."""

    def __init__(self, *, namespace: str, clock: Clock) -> None:
        super().__init__(namespace=namespace, clock=time.time)


class BoundaryOffByOne(Seedable):
    """Counts a record as live at ``clock() == expires_at``."""

    def __init__(self, *, clock: Clock, **kwargs: Any) -> None:
        super().__init__(clock=lambda: clock() - 1e-3, **kwargs)


class NotFoundAsConflict(Seedable):
    """Reports a CAS on an absent key as ``VersionConflict(actual=0)``."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        try:
            return await super().put_if_version(key, data, expected_version, expires_at=expires_at)
        except RecordNotFound:
            raise VersionConflict(key, expected_version, 0) from None


class WrongActual(Seedable):
    """Reports the expected version as ``actual`` in a conflict."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        try:
            return await super().put_if_version(key, data, expected_version, expires_at=expires_at)
        except VersionConflict as exc:
            raise VersionConflict(key, expected_version, expected_version + 1) from exc


class CreateOverwrites(Seedable):
    """``expected_version=0`` overwrites an existing record instead of conflicting."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        if expected_version == 0:
            return await self.put(key, data, expires_at=expires_at)
        return await super().put_if_version(key, data, expected_version, expires_at=expires_at)


class ConflictStillWrites(Seedable):
    """Writes the data, then raises the conflict it should have raised instead."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        current = await self.get(key)
        if current is not None and current.version != expected_version:
            await self.seed(key, check_data(data), current.version, expires_at)
        return await super().put_if_version(key, data, expected_version, expires_at=expires_at)


class DeleteTrueForExpired(Seedable):
    """delete returns True whenever a record was stored, live or not."""

    async def delete(self, key: str) -> bool:
        check_key(key)
        present = self._raw(key) is not None
        await super().delete(key)
        return present


class DeleteAlwaysTrue(Seedable):
    """delete reports success whether or not anything was there."""

    async def delete(self, key: str) -> bool:
        await super().delete(key)
        return True


class CleanupMiscounts(Seedable):
    """cleanup_expired reports the records it looked at, not the ones it removed."""

    async def cleanup_expired(self) -> int:
        with self._lock:
            examined = sum(len(part.records) for part in self._partitions.values())
        await super().cleanup_expired()
        return examined


class CleanupOnlyCounts(Seedable):
    """cleanup_expired counts dead records but leaves them stored (they revive later)."""

    async def cleanup_expired(self) -> int:
        now = self._clock()
        with self._lock:
            return sum(
                not is_live(record.expires_at, now)
                for part in self._partitions.values()
                for record in part.records.values()
            )


class ExpiryKeptOnPut(Seedable):
    """A put without ``expires_at`` keeps the previous expiry."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        current = await self.get(key)
        if expires_at is None and current is not None:
            expires_at = current.expires_at
        return await super().put(key, data, expires_at=expires_at)


class CasIgnoresExpiry(Seedable):
    """put_if_version compares against the stored record even after it expired."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        stored = self._raw(check_key(key))
        if stored is not None and not is_live(stored.expires_at, self._clock()):
            if stored.version != expected_version:
                raise VersionConflict(key, expected_version, stored.version)
            await self.seed(key, check_data(data), expected_version + 1, expires_at)
            return expected_version + 1
        return await super().put_if_version(key, data, expected_version, expires_at=expires_at)


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


class LooseKeys(Seedable):
    """Skips key validation: any string is a key."""

    async def get(self, key: str) -> VersionedRecord | None:
        if not isinstance(key, str) or ":" not in key:
            return None
        partition, item = split(key)
        with self._lock:
            return self._live(self._partitions.get(partition), item, self._clock())


class BoolVersionAccepted(Seedable):
    """Accepts ``True``/``False`` as an expected version (they are ints to Python)."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        return await super().put_if_version(key, data, int(expected_version), expires_at=expires_at)


class FakeShared(Seedable):
    """Declares ``shared=True`` but every instance keeps its own private store."""

    def __init__(self, *, namespace: str, clock: Clock) -> None:
        InMemoryBackend.__init__(self, namespace=namespace, clock=clock, store=MemoryStore())


class CapabilitiesLie(Seedable):
    """Declares ``max_record_bytes`` as a string, as a config file would deliver it."""

    def __init__(self, *, namespace: str, clock: Clock) -> None:
        super().__init__(namespace=namespace, clock=clock)
        self.capabilities = replace(self.capabilities, max_record_bytes="4096")  # type: ignore[arg-type]


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
        now = self._clock()
        with self._lock:
            expired = {
                f"{partition}:{item}"
                for partition, part in self._partitions.items()
                for item, record in part.records.items()
                if not is_live(record.expires_at, now)
            }
        counted = len(expired - self._hidden)
        self._hidden |= expired
        return counted


class VersionSurvivesExpiry(Seedable):
    """put over an expired record continues its version instead of starting at 1."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        stored = self._raw(check_key(key))
        version = 1 if stored is None else stored.version + 1
        await self.seed(key, check_data(data), version, expires_at)
        return version


class CasKeepsExpiry(Seedable):
    """A successful CAS keeps the old ``expires_at`` instead of the one it was given."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        current = await self.get(key)
        if current is not None:
            expires_at = current.expires_at
        return await super().put_if_version(key, data, expected_version, expires_at=expires_at)


class LosesReplies(Seedable):
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
        write = super().put
        return await self._maybe_lose(lambda: write(key, data, expires_at=expires_at))

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        write = super().put_if_version
        return await self._maybe_lose(
            lambda: write(key, data, expected_version, expires_at=expires_at)
        )


class AlwaysFails(Seedable):
    """Every call raises ``BackendError``, as against a server that refuses all commands.

    Nothing it answers contradicts the contract (an unknown outcome never does), so only the
    kit's floor of definite results fails it in the race tests."""

    async def _refuse(self, method: str) -> Any:
        raise BackendError(f"{method}: server refused the command") from ConnectionError(
            "connection reset"
        )

    async def get(self, key: str) -> VersionedRecord | None:
        return await self._refuse("get")  # type: ignore[no-any-return]

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        return await self._refuse("put")  # type: ignore[no-any-return]

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        return await self._refuse("put_if_version")  # type: ignore[no-any-return]

    async def delete(self, key: str) -> bool:
        return await self._refuse("delete")  # type: ignore[no-any-return]

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        return await self._refuse("list_by_prefix")  # type: ignore[no-any-return]

    async def cleanup_expired(self) -> int:
        return await self._refuse("cleanup_expired")  # type: ignore[no-any-return]


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


class ListsInBatches(Seedable):
    """Reads 50 raw entries after ``after``, drops the dead ones and returns what is left:
    a page comes back short whenever a run of dead records is longer than the batch."""

    BATCH = 50

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        if limit is None:
            return await super().list_by_prefix(prefix, after=after)
        saved, self._clock = self._clock, _FrozenClock(float("-inf"))
        try:
            raw = await super().list_by_prefix(prefix, after=after, limit=max(self.BATCH, limit))
        finally:
            self._clock = saved
        now = self._clock()
        return [(k, r) for k, r in raw if is_live(r.expires_at, now)][:limit]


class ListingStopsAtOneScan(Seedable):
    """A listing without ``limit`` returns one scan's worth (500 entries) and stops."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        return await super().list_by_prefix(prefix, after=after, limit=limit or 500)


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


class LivenessInMilliseconds(Seedable):
    """Decides liveness on whole milliseconds of clock and expiry (data kept exact)."""

    def _live(self, part: Any, item: str, now: float) -> VersionedRecord | None:
        record = None if part is None else part.records.get(item)
        if record is None:
            return None
        if record.expires_at is not None and int(now * 1000) >= int(record.expires_at * 1000):
            return None
        return record


class LatestClockWins(Seedable):
    """Never lets time go back: expiry follows the latest clock reading it has seen."""

    def __init__(self, *, clock: Clock, **kwargs: Any) -> None:
        latest = [float("-inf")]

        def never_back() -> float:
            latest[0] = max(latest[0], clock())
            return latest[0]

        super().__init__(clock=never_back, **kwargs)


class Wrapping:
    """A correct backend seen through its public API; a subclass changes one method."""

    def __init__(self, **kwargs: Any) -> None:
        self.inner = Seedable(**kwargs)
        self.capabilities = self.inner.capabilities

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class SizeInCharacters(Wrapping):
    """Declares a 1000-byte limit but measures text data in characters (as a JSON layer that
    stores valid UTF-8 as a string would): multi-byte data gets past the limit."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.capabilities = replace(self.capabilities, max_record_bytes=1000)

    def _check(self, key: str, data: bytes) -> None:
        try:
            size = len(check_data(data).decode("utf-8"))
        except UnicodeDecodeError:
            size = len(data)
        check_size(key, b"x" * size, 1000)

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        self._check(key, data)
        return await self.inner.put(key, data, expires_at=expires_at)

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        self._check(key, data)
        return await self.inner.put_if_version(key, data, expected_version, expires_at=expires_at)


_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def _upper_escapes(key: str) -> str:
    return _ESCAPE.sub(lambda match: match.group(0).upper(), key) if isinstance(key, str) else key


class PercentEscapesCaseFolded(Seedable):
    """Normalizes percent-escapes to upper case (``%2a`` -> ``%2A``), as URL code does."""

    async def get(self, key: str) -> VersionedRecord | None:
        return await super().get(_upper_escapes(key))

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        return await super().put(_upper_escapes(key), data, expires_at=expires_at)

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        folded = _upper_escapes(key)
        return await super().put_if_version(folded, data, expected_version, expires_at=expires_at)

    async def delete(self, key: str) -> bool:
        return await super().delete(_upper_escapes(key))


class AfterAsciiOnly(Seedable):
    """Encodes ``after`` as ASCII, dropping what does not fit (``p:a\u00e9`` -> ``p:a``)."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        if isinstance(after, str):
            after = after.encode("ascii", errors="ignore").decode()
        return await super().list_by_prefix(prefix, after=after, limit=limit)


class AfterComparedAsUtf16(Seedable):
    """Compares keys with ``after`` by their UTF-16 encoding (as a store keeping text in
    little-endian UTF-16 buffers would), not by code point."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        check_page(after, limit)
        everything = await super().list_by_prefix(prefix)
        if after is not None:
            bound = after.encode("utf-16-le", errors="surrogatepass")
            everything = [(k, r) for k, r in everything if k.encode("utf-16-le") > bound]
        return everything if limit is None else everything[:limit]


class CleanupOneBatch(Seedable):
    """cleanup_expired removes at most 100 dead records per call (one scan batch)."""

    async def cleanup_expired(self) -> int:
        now = self._clock()
        removed = 0
        with self._lock:
            for partition, part in list(self._partitions.items()):
                for item, record in list(part.records.items()):
                    if removed < 100 and not is_live(record.expires_at, now):
                        self._remove(partition, item)
                        removed += 1
        return removed


class CleanupReadAwaitDelete(Seedable):
    """cleanup_expired finds the dead keys, awaits (a round trip), then deletes those keys
    unconditionally: a record rewritten in between is deleted although it is live."""

    async def cleanup_expired(self) -> int:
        now = self._clock()
        with self._lock:
            dead = [
                (partition, item)
                for partition, part in self._partitions.items()
                for item, record in part.records.items()
                if not is_live(record.expires_at, now)
            ]
        await anyio.lowlevel.checkpoint()
        with self._lock:
            for partition, item in dead:
                part = self._partitions.get(partition)
                if part is not None and item in part.records:
                    self._remove(partition, item)
        return len(dead)


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
        now = self._clock()
        removed = 0
        with self._lock:
            for key in sorted(self._written):
                record = self._raw(key)
                if record is not None and not is_live(record.expires_at, now):
                    self._remove(*split(key))
                    removed += 1
        return removed


class CleanupLeavesIndexEntries(Seedable):
    """cleanup_expired deletes the records but not their entries in the sorted key index."""

    async def cleanup_expired(self) -> int:
        now = self._clock()
        removed = 0
        with self._lock:
            for part in self._partitions.values():
                for item, record in list(part.records.items()):
                    if not is_live(record.expires_at, now):
                        del part.records[item]
                        removed += 1
        return removed


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
        now = self._clock()
        removed = 0
        with self._lock:
            for partition, part in list(self._partitions.items()):
                if not partition.startswith(self._prefix):
                    continue
                for item, record in list(part.records.items()):
                    if not is_live(record.expires_at, now):
                        self._remove(partition, item)
                        removed += 1
        return removed

    async def seed(self, key: str, data: bytes, version: int, expires_at: float | None) -> None:
        await super().seed(self._in(key), data, version, expires_at)


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
        if not is_live(expires_at, self._clock()):
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


class VersionsListedAsFloats(Seedable):
    """list_by_prefix passes versions through a float (a JSON layer of doubles)."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        found = await super().list_by_prefix(prefix, after=after, limit=limit)
        return [(k, replace(r, version=int(float(r.version)))) for k, r in found]


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


class ListTruncatesLargeData(Seedable):
    """list_by_prefix returns at most 64 KiB of each record's data (a response buffer)."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        found = await super().list_by_prefix(prefix, after=after, limit=limit)
        return [(k, replace(r, data=r.data[:65536])) for k, r in found]


# --- Input classes (conformance/inputs.py): each breaks on one boundary of one argument ----


class ItemTrailingDotStripped(Seedable):
    """Drops a trailing ``.`` from items, as some file systems do with names."""

    def _item(self, key: str) -> str:
        partition, item = split(check_key(key))
        return f"{partition}:{item.rstrip('.') or item}"

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        return await super().put(self._item(key), data, expires_at=expires_at)

    async def get(self, key: str) -> VersionedRecord | None:
        return await super().get(self._item(key))


class PartitionIn255Characters(Seedable):
    """Keeps partitions in a 255-character column: longer ones are cut, so they collide."""

    def _cut(self, key: str) -> str:
        partition, item = split(check_key(key))
        return f"{partition[:255]}:{item}"

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        return await super().put(self._cut(key), data, expires_at=expires_at)

    async def get(self, key: str) -> VersionedRecord | None:
        return await super().get(self._cut(key))


class AfterEncodedStrictly(Seedable):
    """Hands ``after`` to a driver that encodes it as strict UTF-8 (lone surrogates fail)."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        if after is not None:
            after.encode("utf-8")
        return await super().list_by_prefix(prefix, after=after, limit=limit)


class LimitInInt32(Seedable):
    """Hands ``limit`` to a storage API that takes a signed 32-bit integer."""

    async def list_by_prefix(
        self, prefix: str, *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, VersionedRecord]]:
        if isinstance(limit, int) and limit >= 2**31:
            raise BackendError(f"limit {limit} does not fit a 32-bit integer")
        return await super().list_by_prefix(prefix, after=after, limit=limit)


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


class ExpiryClampedToYear9999(Seedable):
    """Stores expiries as datetimes, clamping anything past 9999-12-31."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        expires_at = check_expires_at(expires_at)
        if expires_at is not None:
            expires_at = min(expires_at, 253402300799.0)
        return await super().put(key, data, expires_at=expires_at)


class NegativeExpiryNeverExpires(Seedable):
    """Reads a negative expiry as "no expiry", like Redis' ``TTL`` of -1."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        expires_at = check_expires_at(expires_at)
        if expires_at is not None and expires_at < 0:
            expires_at = None
        return await super().put(key, data, expires_at=expires_at)


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
        raw = self._raw(check_key(key))
        if found is None and raw is not None:
            self._dead.add(key)
        return found

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        self._dead.discard(key)
        return await super().put(key, data, expires_at=expires_at)


class VersionInInt32(Seedable):
    """Counts versions in a signed 32-bit column: past 2**31-1 they wrap around."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        current = await self.get(key)
        if current is None or current.version < 2**31 - 1:
            return await super().put(key, data, expires_at=expires_at)
        wrapped = (current.version + 1 + 2**31) % 2**32 - 2**31
        await self.seed(key, check_data(data), wrapped, check_expires_at(expires_at))
        return wrapped


# --- Operations the contract allows besides single calls (conformance/contract/lifecycle.py) -


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


class AcloseLeavesDescriptorsOpen(Seedable):
    """Opens a pipe per client (its connection) and never closes it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _LEAKED_FDS.extend(os.pipe())


class ListingByPosition(Seedable):
    """Pages internally by position: it finds where ``after`` ranks once, then reads two
    items at a time by offset into the sorted keys (a storage's rank, or SQL's OFFSET), one
    round trip each, so a delete before the offset meanwhile shifts an untouched record past
    it."""

    def _ranked(self, partition: str, item_prefix: str) -> list[str]:
        part = self._partitions.get(partition)
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
            part = self._partitions.get(partition)
            for item in batch:
                record = self._live(part, item, self._clock())
                if record is not None and (limit is None or len(out) < limit):
                    out.append((f"{partition}:{item}", record))
            offset += len(batch)
            await anyio.lowlevel.checkpoint()
        return out


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
        now = self._clock()
        removed = 0
        with self._lock:
            for partition, part in list(self._partitions.items()):
                for item, record in list(part.records.items()):
                    if f"{partition}:{item}" in _UNINDEXED:
                        continue
                    if not is_live(record.expires_at, now):
                        self._remove(partition, item)
                        removed += 1
        return removed


_UNINDEXED: set[str] = set()


def factory_for(cls: Callable[..., Any]) -> Callable[..., Any]:
    """A kit factory whose backends share one fresh store, so second clients see the same
    data and nothing is left over from another test."""
    store = MemoryStore()

    def factory(*, namespace: str, clock: Clock) -> KitTarget:
        backend = cls(namespace=namespace, clock=clock, store=store)
        return KitTarget(backend, backend)

    return factory


@dataclass(frozen=True)
class Broken:
    """A broken backend, the clause it breaks and the suite module that must catch it."""

    cls: Callable[..., Any]
    clause: str
    area: str


BROKEN: dict[str, Broken] = {
    "cas_read_await_write": Broken(CasReadAwaitWrite, "KV-CAS-5", "cas"),
    "put_read_await_write": Broken(PutReadAwaitWrite, "KV-PUT-2", "get_put"),
    "get_shows_expired": Broken(GetShowsExpired, "KV-LIVE-2", "expiry"),
    "list_shows_expired": Broken(ListShowsExpired, "KV-LIVE-2", "expiry"),
    "limit_before_expiry_filter": Broken(LimitBeforeExpiryFilter, "KV-LIST-5", "listing"),
    "prefix_not_bounded": Broken(PrefixNotBounded, "KV-LIST-2", "listing"),
    "after_inclusive": Broken(AfterInclusive, "KV-LIST-4", "listing"),
    "listing_unsorted": Broken(ListingUnsorted, "KV-LIST-3", "listing"),
    "utf8_mangling": Broken(Utf8Mangling, "KV-DATA-1", "data"),
    "truncating": Broken(Truncating, "KV-SIZE-1", "sizes"),
    "capacity_off_by_one": Broken(CapacityOffByOne, "KV-SIZE-2", "sizes"),
    "shared_namespaces": Broken(SharedNamespaces, "KV-ISO-1", "isolation"),
    "clock_ignored": Broken(ClockIgnored, "KV-LIVE-3", "expiry"),
    "boundary_off_by_one": Broken(BoundaryOffByOne, "KV-LIVE-1", "expiry"),
    "not_found_as_conflict": Broken(NotFoundAsConflict, "KV-CAS-2", "cas"),
    "wrong_actual": Broken(WrongActual, "KV-CAS-3", "cas"),
    "create_overwrites": Broken(CreateOverwrites, "KV-CAS-1", "cas"),
    "conflict_still_writes": Broken(ConflictStillWrites, "KV-CAS-3", "cas"),
    "delete_true_for_expired": Broken(DeleteTrueForExpired, "KV-LIVE-2", "expiry"),
    "delete_always_true": Broken(DeleteAlwaysTrue, "KV-DEL-1", "delete"),
    "cleanup_miscounts": Broken(CleanupMiscounts, "KV-CLEAN-1", "expiry"),
    "cleanup_only_counts": Broken(CleanupOnlyCounts, "KV-CLEAN-2", "expiry"),
    "expiry_kept_on_put": Broken(ExpiryKeptOnPut, "KV-LIVE-4", "expiry"),
    "cas_ignores_expiry": Broken(CasIgnoresExpiry, "KV-LIVE-2", "expiry"),
    "float_versions": Broken(FloatVersions, "KV-VER-1", "data"),
    "loose_keys": Broken(LooseKeys, "KV-KEY-1", "keys"),
    "bool_version_accepted": Broken(BoolVersionAccepted, "KV-ARG-2", "keys"),
    "fake_shared": Broken(FakeShared, "KV-SHARED-1", "shared"),
    "capabilities_lie": Broken(CapabilitiesLie, "KV-CAP-1", "capabilities"),
    "cleanup_hides_records": Broken(CleanupHidesRecords, "KV-CLEAN-2", "expiry"),
    "version_survives_expiry": Broken(VersionSurvivesExpiry, "KV-LIVE-2", "expiry"),
    "cas_keeps_expiry": Broken(CasKeepsExpiry, "KV-LIVE-4", "expiry"),
    "never_expires": Broken(NeverExpires, "KV-LIVE-1", "expiry"),
    "always_fails": Broken(AlwaysFails, "KV-PUT-2", "races"),
    "lists_in_batches": Broken(ListsInBatches, "KV-LIST-5", "listing"),
    "listing_stops_at_one_scan": Broken(ListingStopsAtOneScan, "KV-LIST-2", "listing"),
    "expiry_in_milliseconds": Broken(ExpiryInMilliseconds, "KV-LIVE-4", "expiry"),
    "liveness_in_milliseconds": Broken(LivenessInMilliseconds, "KV-LIVE-1", "expiry"),
    "latest_clock_wins": Broken(LatestClockWins, "KV-LIVE-3", "expiry"),
    "size_in_characters": Broken(SizeInCharacters, "KV-SIZE-1", "sizes"),
    "percent_escapes_case_folded": Broken(PercentEscapesCaseFolded, "KV-KEY-3", "keys"),
    "after_ascii_only": Broken(AfterAsciiOnly, "KV-LIST-4", "listing"),
    "after_compared_as_utf16": Broken(AfterComparedAsUtf16, "KV-LIST-4", "listing"),
    "cleanup_one_batch": Broken(CleanupOneBatch, "KV-CLEAN-1", "expiry"),
    "cleanup_read_await_delete": Broken(CleanupReadAwaitDelete, "KV-CLEAN-1", "expiry"),
    "cleanup_own_writes_only": Broken(CleanupOwnWritesOnly, "KV-CLEAN-1", "expiry"),
    "cleanup_leaves_index_entries": Broken(CleanupLeavesIndexEntries, "KV-CLEAN-1", "expiry"),
    "namespace_joined_without_separator": Broken(
        NamespaceJoinedWithoutSeparator, "KV-ISO-1", "isolation"
    ),
    "expiry_kept_client_side": Broken(ExpiryKeptClientSide, "KV-SHARED-1", "shared"),
    "versions_listed_as_floats": Broken(VersionsListedAsFloats, "KV-VER-1", "data"),
    "cas_compares_floats": Broken(CasComparesFloats, "KV-VER-1", "data"),
    "list_truncates_large_data": Broken(ListTruncatesLargeData, "KV-DATA-1", "data"),
    "item_trailing_dot_stripped": Broken(ItemTrailingDotStripped, "KV-KEY-1", "input_domain"),
    "partition_in_255_characters": Broken(PartitionIn255Characters, "KV-KEY-2", "input_domain"),
    "after_encoded_strictly": Broken(AfterEncodedStrictly, "KV-ARG-4", "input_domain"),
    "limit_in_int32": Broken(LimitInInt32, "KV-ARG-4", "input_domain"),
    "last_chunk_off_by_one": Broken(LastChunkOffByOne, "KV-DATA-1", "input_domain"),
    "overwrite_counts_old_size": Broken(OverwriteCountsOldSize, "KV-SIZE-2", "input_domain"),
    "expiry_clamped_to_year_9999": Broken(ExpiryClampedToYear9999, "KV-LIVE-4", "input_domain"),
    "negative_expiry_never_expires": Broken(
        NegativeExpiryNeverExpires, "KV-LIVE-1", "input_domain"
    ),
    "death_remembered_on_read": Broken(DeathRememberedOnRead, "KV-LIVE-3", "input_domain"),
    "version_in_int32": Broken(VersionInInt32, "KV-VER-1", "input_domain"),
    "cancel_half_write": Broken(CancelHalfWrite, "KV-CANCEL-1", "lifecycle"),
    "cancel_leaves_lock_held": Broken(CancelLeavesLockHeld, "KV-CANCEL-1", "lifecycle"),
    "cancelled_write_lands_later": Broken(CancelledWriteLandsLater, "KV-CANCEL-1", "lifecycle"),
    "reopen_loses_writes": Broken(ReopenLosesWrites, "KV-CLOSE-2", "lifecycle"),
    "aclose_leaves_task_running": Broken(AcloseLeavesTaskRunning, "KV-CLOSE-1", "lifecycle"),
    "aclose_leaves_descriptors_open": Broken(
        AcloseLeavesDescriptorsOpen, "KV-CLOSE-1", "lifecycle"
    ),
    "listing_by_position": Broken(ListingByPosition, "KV-LIST-5", "lifecycle"),
    "cleanup_misses_cas_expiries": Broken(CleanupMissesCasExpiries, "KV-CLEAN-1", "lifecycle"),
}


def _factory(cls: Callable[..., Any]) -> Callable[..., Any]:
    def factory(*, namespace: str, clock: Clock) -> KitTarget:
        backend = cls(namespace=namespace, clock=clock)
        return KitTarget(backend, backend)

    factory.__doc__ = cls.__doc__
    return factory


# ``--backend broken_backends:<name>`` resolves these module attributes.
globals().update({name: _factory(broken.cls) for name, broken in BROKEN.items()})


# --- Sharing across processes (KV-SHARED-2): the kit-plugin part of the zoo ----------------


class InProcessOnly(Seedable):
    """Declares ``shared_across_processes`` but keeps its records in this process's memory:
    instances in one process agree (KV-SHARED-1 holds), another process sees an empty store."""

    def __init__(self, *, namespace: str, clock: Clock) -> None:
        super().__init__(namespace=namespace, clock=clock)
        self.capabilities = replace(self.capabilities, shared_across_processes=True)


BROKEN["in_process_only"] = Broken(InProcessOnly, "KV-SHARED-2", "cross_process")
in_process_only = _factory(InProcessOnly)


# --- Damaged records (KV-DAMAGE-1) ---------------------------------------------------------


@dataclass(frozen=True)
class _Undecodable:
    """What a decoder would make of a damaged stored record: nothing but the kind of damage.
    (``expires_at`` only so that ``cleanup_expired`` passes it by, as a live record.)"""

    kind: str
    expires_at: float | None = None


class DamageAware(Seedable):
    """Correct on damaged records, as if it decoded stored bytes: ``get`` reports the damage,
    listings skip it with a warning, writes replace it. Not broken: the base of the next one,
    and the kit's own check that KV-DAMAGE-1's tests pass a backend that keeps the clause."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._met: list[str] = []  # damaged items the current listing passed

    async def plant_damaged(self, key: str, kind: str) -> bool:
        if kind == "bad-index-member":
            return False  # no index: every lookup goes through the records themselves
        partition, item = split(key)
        with self._lock:
            self._write(partition, item, _Undecodable(kind))  # type: ignore[arg-type]
        return True

    def _live(self, part: Any, item: str, now: float) -> VersionedRecord | None:
        record = None if part is None else part.records.get(item)
        if isinstance(record, _Undecodable):
            self._met.append(item)
            return None
        return super()._live(part, item, now)

    async def _get(self, key: str) -> VersionedRecord | None:
        raw: Any = self._raw(key)
        if isinstance(raw, _Undecodable):
            raise BackendError(f"cannot decode the record at key {key!r}: {raw.kind}")
        return await super()._get(key)

    async def _list(
        self, partition: str, item_prefix: str, after_item: str | None, limit: int | None
    ) -> list[tuple[str, VersionedRecord]]:
        self._met = []  # the listing below never awaits, so nothing else appends meanwhile
        found = await super()._list(partition, item_prefix, after_item, limit)
        self._report([f"{partition}:{item}" for item in self._met])
        return found

    def _report(self, damaged: list[str]) -> None:
        for key in damaged:
            skip_damaged(key, BackendError(f"cannot decode the record at key {key!r}"))


class DamageFailsListing(DamageAware):
    """Decodes every listed record in one pass and gives up at the first it cannot decode, so
    one damaged record fails the owner's whole listing."""

    def _report(self, damaged: list[str]) -> None:
        if damaged:
            raise BackendError(f"cannot decode the record at key {damaged[0]!r}")


BROKEN["damage_fails_listing"] = Broken(DamageFailsListing, "KV-DAMAGE-1", "damage")
damage_fails_listing = _factory(DamageFailsListing)
damage_aware = _factory(DamageAware)
