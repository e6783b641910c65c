"""Broken backends for races: the race fuzzer's teeth (and a backend that loses replies but is not
broken).

``conformance/suite/test_races.py`` must fail each one on the clause its ``@zoo`` declares
(``tests/kit/test_teeth.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pmcp_tasks.backend import VersionedRecord
from pmcp_tasks.errors import BackendError

from .base import Seedable, zoo


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


@zoo("always_fails", breaks="KV-PUT-2")
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
