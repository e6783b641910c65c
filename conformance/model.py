"""An independent, executable restatement of the StorageBackend contract.

The state machine compares a backend with this model after every step, and the
linearizability checker uses its per-record transitions as the sequential specification. It is
deliberately *not* :class:`~reference_backends.memory.InMemoryBackend` (nor built from the
helpers the backends share, such as ``is_live``): a bug written once into shared code would
otherwise be agreed on by both sides and never seen. It is a plain dict,
``key -> Record(data, version, expires_at)``, with liveness decided by the model's own clock.

Where the contract leaves a choice open, the model tracks the set of allowed answers instead of
picking one: ``delete`` on an expired record may or may not remove it physically, so such
records sit in ``limbo`` and ``cleanup_expired`` may count them or not.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple


class Record(NamedTuple):
    """What the model stores for one key; compares equal to a ``VersionedRecord``'s fields."""

    data: bytes
    version: int
    expires_at: float | None


class NotFoundOutcome(enum.Enum):
    """``put_if_version`` raised ``RecordNotFound`` (KV-CAS-2)."""

    NOT_FOUND = "RecordNotFound"

    def __repr__(self) -> str:
        return "RecordNotFound"


NOT_FOUND = NotFoundOutcome.NOT_FOUND


@dataclass(frozen=True, slots=True)
class Conflict:
    """``put_if_version`` raised ``VersionConflict`` carrying ``actual`` (KV-CAS-1, KV-CAS-3)."""

    actual: int

    def __repr__(self) -> str:
        return f"VersionConflict(actual={self.actual})"


CasOutcome = int | Conflict | NotFoundOutcome
"""The new version on success, else the error the contract requires."""


def live(record: Record | None, now: float) -> Record | None:
    """KV-LIVE-1 restated: live iff no expiry or ``now`` is strictly before it."""
    if record is None or (record.expires_at is not None and now >= record.expires_at):
        return None
    return record


def apply_put(current: Record | None, data: bytes, expires_at: float | None) -> Record:
    """KV-PUT-1 on the *live* record of one key: the record after an unconditional put."""
    return Record(data, 1 if current is None else current.version + 1, expires_at)


def apply_cas(
    current: Record | None, data: bytes, expected: int, expires_at: float | None
) -> tuple[Record | None, CasOutcome]:
    """KV-CAS-1..4 on the *live* record of one key: the record afterwards and the outcome."""
    if current is None:
        if expected != 0:
            return None, NOT_FOUND
        return Record(data, 1, expires_at), 1
    if current.version != expected:
        return current, Conflict(current.version)
    new = Record(data, expected + 1, expires_at)
    return new, new.version


class KVModel:
    """One namespace of the contract, sequential, with a clock the caller moves.

    Version overflow (KV-VER-1) is not modelled: no sequence the kit generates gets near it.
    """

    def __init__(self, now: float) -> None:
        self.now = now
        self.start = now
        self.records: dict[str, Record] = {}
        self.limbo: dict[str, float] = {}  # expired records that `delete` may have left behind
        self.cleaned: dict[str, float] = {}  # removed by cleanup: must never come back

    def get(self, key: str) -> Record | None:
        return live(self.records.get(key), self.now)

    def _written(self, key: str, record: Record | None) -> None:
        self.limbo.pop(key, None)
        self.cleaned.pop(key, None)
        if record is None:
            self.records.pop(key, None)
        else:
            self.records[key] = record

    def seed(self, key: str, record: Record) -> None:
        """A record stored around the contract (the kit's ``seed`` hook): any version."""
        self._written(key, record)

    def put(self, key: str, data: bytes, expires_at: float | None) -> int:
        record = apply_put(self.get(key), data, expires_at)
        self._written(key, record)
        return record.version

    def put_if_version(
        self, key: str, data: bytes, expected: int, expires_at: float | None
    ) -> CasOutcome:
        record, outcome = apply_cas(self.get(key), data, expected, expires_at)
        if isinstance(outcome, int):
            self._written(key, record)
        return outcome

    def delete(self, key: str) -> bool:
        stored = self.records.get(key)
        if stored is None:
            return False
        if live(stored, self.now) is not None:
            self._written(key, None)
            return True
        assert stored.expires_at is not None  # not live, so it has an expiry
        del self.records[key]
        self.limbo[key] = stored.expires_at
        return False

    def list_by_prefix(
        self, prefix: str, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, Record]]:
        """KV-LIST-2..5: live records under ``prefix``, ascending, ``> after``, ``<= limit``."""
        out: list[tuple[str, Record]] = []
        for key in sorted(self.records):
            record = self.get(key)
            if record is None or not key.startswith(prefix):
                continue
            if after is not None and key <= after:
                continue
            if limit is not None and len(out) >= limit:
                break
            out.append((key, record))
        return out

    def cleanup_expired(self) -> tuple[int, int]:
        """KV-CLEAN-1: remove what is not live; return the (least, most) count allowed."""
        expired = [key for key in self.records if self.get(key) is None]
        for key in expired:
            self.cleaned[key] = self.records.pop(key).expires_at or 0.0
        maybe = len(self.limbo)
        self.limbo.clear()
        return len(expired), len(expired) + maybe

    def earliest_safe_time(self) -> float:
        """How far back the clock may go without making an expired, uncleaned record live.

        The contract says nothing about such records coming back (only records removed by
        ``cleanup_expired`` must stay gone, KV-CLEAN-2), so the kit never asks. The floor is
        also the clock's start: a real server's own expiry follows real time (KV-LIVE-3).
        """
        floor = self.start
        for record in self.records.values():
            if record.expires_at is not None and record.expires_at <= self.now:
                floor = max(floor, record.expires_at)
        for expires_at in self.limbo.values():
            floor = max(floor, expires_at)
        return floor
