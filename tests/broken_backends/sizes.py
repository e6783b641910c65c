"""Broken backends for record size limits: declared, enforced, measured in bytes.

``conformance/suite/test_sizes.py`` must fail each one on the clause its ``@zoo`` declares
(``tests/kit/test_teeth.py``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pmcp_tasks.backend import Clock
from pmcp_tasks.keys import check_data, check_size

from .base import Seedable, zoo


@zoo("truncating", breaks="KV-SIZE-1")
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


@zoo("capacity_off_by_one", breaks="KV-SIZE-2")
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


class Wrapping:
    """A correct backend seen through its public API; a subclass changes one method."""

    def __init__(self, **kwargs: Any) -> None:
        self.inner = Seedable(**kwargs)
        self.capabilities = self.inner.capabilities

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@zoo("size_in_characters", breaks="KV-SIZE-1")
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
