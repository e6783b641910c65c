"""Helpers shared by the domain tests (imported by name: this folder has no __init__.py)."""

from __future__ import annotations

import asyncio

from pmcp_tasks import VersionedRecord
from reference_backends.memory import InMemoryBackend

OWNERS = ["a", "a:b", "%", "%25", "*", "{x}", "a b", "ünï😀", "alice"]
OWNERS += ["x" * 4_000, "x" * 3_999 + "y"]  # both addressed by digest
"""Owner strings that a naive key scheme would confuse with each other."""


class YieldingBackend(InMemoryBackend):
    """Gives control away after every read, so that read -> CAS windows really interleave."""

    async def get(self, key: str) -> VersionedRecord | None:
        record = await super().get(key)
        await asyncio.sleep(0)
        return record
