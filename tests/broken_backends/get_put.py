"""Broken backends for put: versions handed out twice under concurrent writes.

``conformance/suite/test_get_put.py`` must fail each one on the clause its ``@zoo`` declares
(``tests/kit/test_teeth.py``).
"""

from __future__ import annotations

import anyio
import anyio.lowlevel

from pmcp_tasks.keys import check_data

from .base import Seedable, zoo


@zoo("put_read_await_write", breaks="KV-PUT-2")
class PutReadAwaitWrite(Seedable):
    """put as get, await, write version + 1: two concurrent puts can get the same version."""

    async def put(self, key: str, data: bytes, *, expires_at: float | None = None) -> int:
        current = await self.get(key)
        await anyio.lowlevel.checkpoint()
        version = 1 if current is None else current.version + 1
        await self.seed(key, check_data(data), version, expires_at)
        return version
