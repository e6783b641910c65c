"""Reading a whole partition a bounded page at a time, for the store and the cap alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from pmcp_tasks.backend import StorageBackend, VersionedRecord

PAGE = 1000
"""Records per ``list_by_prefix`` call: one reply stays small whatever the partition holds."""


async def walk(backend: StorageBackend, prefix: str) -> AsyncIterator[tuple[str, VersionedRecord]]:
    """Every live record under ``prefix``, a bounded page at a time, yielding between pages."""
    after: str | None = None
    while True:
        page = await backend.list_by_prefix(prefix, after=after, limit=PAGE)
        for key, stored in page:
            yield key, stored
        if len(page) < PAGE:
            return
        after = page[-1][0]
        await asyncio.sleep(0)
