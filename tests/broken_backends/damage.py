"""Broken backends for damaged records (KV-DAMAGE-1), and a correct backend the clause's tests must
pass.

``conformance/suite/test_damage.py`` must fail each one on the clause its ``@zoo`` declares
(``tests/kit/test_teeth.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pmcp_tasks.backend import VersionedRecord
from pmcp_tasks.backend_base import skip_damaged
from pmcp_tasks.errors import BackendError
from pmcp_tasks.keys import split_key as split

from .base import Seedable, zoo


@dataclass(frozen=True)
class _Undecodable:
    """What a decoder would make of a damaged stored record: nothing but the kind of damage.
    (``expires_at`` only so that ``cleanup_expired`` passes it by, as a live record.)"""

    kind: str
    expires_at: float | None = None


@zoo("damage_aware")
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
        with self.inside.lock:
            self.inside.write(partition, item, _Undecodable(kind))  # type: ignore[arg-type]
        return True

    def live_record(self, part: Any, item: str, now: float) -> VersionedRecord | None:
        record = None if part is None else part.records.get(item)
        if isinstance(record, _Undecodable):
            self._met.append(item)
            return None
        return super().live_record(part, item, now)

    async def _get(self, key: str) -> VersionedRecord | None:
        raw: Any = self.inside.raw(key)
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


@zoo("damage_fails_listing", breaks="KV-DAMAGE-1")
class DamageFailsListing(DamageAware):
    """Decodes every listed record in one pass and gives up at the first it cannot decode, so
    one damaged record fails the owner's whole listing."""

    def _report(self, damaged: list[str]) -> None:
        if damaged:
            raise BackendError(f"cannot decode the record at key {damaged[0]!r}")
