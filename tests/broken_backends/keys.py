"""Broken backends for key and argument validation, keys stored exactly.

``conformance/suite/test_keys.py`` must fail each one on the clause its ``@zoo`` declares
(``tests/kit/test_teeth.py``).
"""

from __future__ import annotations

import re

from pmcp_tasks.backend import VersionedRecord
from pmcp_tasks.keys import split_key as split

from .base import Seedable, zoo


@zoo("loose_keys", breaks="KV-KEY-1")
class LooseKeys(Seedable):
    """Skips key validation: any string is a key."""

    async def get(self, key: str) -> VersionedRecord | None:
        if not isinstance(key, str) or ":" not in key:
            return None
        partition, item = split(key)
        with self.inside.lock:
            return self.live_record(
                self.inside.partitions.get(partition), item, self.inside.clock()
            )


@zoo("bool_version_accepted", breaks="KV-ARG-2")
class BoolVersionAccepted(Seedable):
    """Accepts ``True``/``False`` as an expected version (they are ints to Python)."""

    async def put_if_version(
        self, key: str, data: bytes, expected_version: int, *, expires_at: float | None = None
    ) -> int:
        return await super().put_if_version(key, data, int(expected_version), expires_at=expires_at)


_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def _upper_escapes(key: str) -> str:
    return _ESCAPE.sub(lambda match: match.group(0).upper(), key) if isinstance(key, str) else key


@zoo("percent_escapes_case_folded", breaks="KV-KEY-3")
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
