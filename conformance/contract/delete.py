"""delete (KV-DEL-1): True iff a live record was removed; idempotent."""

from __future__ import annotations

import pytest

from conformance.contract.base import stored
from pmcp_tasks.backend import StorageBackend


class DeleteContract:
    """delete."""

    pytestmark = pytest.mark.anyio

    @pytest.mark.pmcp_clause("KV-DEL-1")
    async def test_delete_removes_a_live_record_and_says_so(self, backend: StorageBackend) -> None:
        await backend.put("p:k", b"x")
        assert await backend.delete("p:k") is True
        assert await backend.get("p:k") is None
        assert await backend.list_by_prefix("p:") == []

    @pytest.mark.pmcp_clause("KV-DEL-1")
    async def test_delete_again_returns_false(self, backend: StorageBackend) -> None:
        await backend.put("p:k", b"x")
        assert await backend.delete("p:k") is True
        assert await backend.delete("p:k") is False
        assert await backend.delete("p:k") is False

    @pytest.mark.pmcp_clause("KV-DEL-1")
    async def test_delete_of_an_absent_key_returns_false(self, backend: StorageBackend) -> None:
        assert await backend.delete("p:never") is False

    @pytest.mark.pmcp_clause("KV-DEL-1")
    async def test_delete_touches_only_its_key(self, backend: StorageBackend) -> None:
        for key in ("p:a", "p:ab", "p:b", "q:a"):
            await backend.put(key, key.encode())
        assert await backend.delete("p:a") is True
        for key in ("p:ab", "p:b", "q:a"):
            assert await stored(backend, key) == (key.encode(), 1, None), key
