"""get and put (KV-PUT-*): an unconditional, atomic upsert whose versions count up by one."""

from __future__ import annotations

from functools import partial

import pytest

from conformance.contract.base import Timeline, racing_puts, run_concurrently, stored
from pmcp_tasks.backend import StorageBackend


class GetPutContract:
    """get and put."""

    pytestmark = pytest.mark.anyio

    @pytest.mark.pmcp_clause("KV-PUT-1")
    async def test_get_of_a_key_never_written_is_none(self, backend: StorageBackend) -> None:
        assert await backend.get("p:never") is None

    @pytest.mark.pmcp_clause("KV-PUT-1")
    async def test_put_creates_with_version_1_and_get_returns_it(
        self, backend: StorageBackend
    ) -> None:
        assert await backend.put("p:k", b"first") == 1
        assert await stored(backend, "p:k") == (b"first", 1, None)

    @pytest.mark.pmcp_clause("KV-PUT-1")
    async def test_put_replaces_and_counts_versions_up_by_one(
        self, backend: StorageBackend
    ) -> None:
        versions = [await backend.put("p:k", f"v{i}".encode()) for i in range(1, 6)]
        assert versions == [1, 2, 3, 4, 5]
        assert await stored(backend, "p:k") == (b"v5", 5, None)

    @pytest.mark.pmcp_clause("KV-PUT-1")
    async def test_put_returns_the_expiry_it_was_given(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        later = timeline.later()
        assert await backend.put("p:k", b"x", expires_at=later) == 1
        assert await stored(backend, "p:k") == (b"x", 1, later)

    @pytest.mark.pmcp_clause("KV-PUT-1")
    async def test_keys_are_independent(self, backend: StorageBackend) -> None:
        assert await backend.put("p:a", b"a") == 1
        assert await backend.put("p:a", b"a2") == 2
        assert await backend.put("p:b", b"b") == 1
        assert await stored(backend, "p:a") == (b"a2", 2, None)
        assert await stored(backend, "p:b") == (b"b", 1, None)
        assert await backend.get("p:c") is None

    @pytest.mark.pmcp_clause("KV-PUT-1")
    async def test_put_after_delete_starts_again_at_1(self, backend: StorageBackend) -> None:
        await backend.put("p:k", b"x")
        await backend.put("p:k", b"y")
        assert await backend.delete("p:k") is True
        assert await backend.put("p:k", b"z") == 1
        assert await stored(backend, "p:k") == (b"z", 1, None)

    @pytest.mark.pmcp_clause("KV-PUT-2")
    async def test_concurrent_puts_hand_out_consecutive_distinct_versions(
        self, backend: StorageBackend
    ) -> None:
        await backend.put("p:k", b"start")
        await racing_puts(backend, 16, 2, "a record at version 1")

    @pytest.mark.pmcp_clause("KV-PUT-2")
    async def test_concurrent_first_puts_create_once(self, backend: StorageBackend) -> None:
        results = await run_concurrently([partial(backend.put, "p:new", b"x") for _ in range(8)])
        assert sorted(results) == list(range(1, 9)), (
            f"concurrent puts on an absent key returned {sorted(results)}; expected 1..8"
        )
