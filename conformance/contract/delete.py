"""delete (KV-DEL-1): True iff a live record was removed; idempotent."""

from __future__ import annotations

import pytest

from conformance.contract.base import stored
from conformance.expect import expect
from pmcp_tasks.backend import StorageBackend


class DeleteContract:
    """delete."""

    pytestmark = pytest.mark.anyio

    @pytest.mark.clause("KV-DEL-1")
    async def test_delete_removes_a_live_record_and_says_so(self, backend: StorageBackend) -> None:
        await backend.put("p:k", b"x")
        expect(await backend.delete("p:k"), True, call='backend.delete("p:k")')
        expect(await backend.get("p:k"), None, call='backend.get("p:k")')
        expect(await backend.list_by_prefix("p:"), [], call='backend.list_by_prefix("p:")')

    @pytest.mark.clause("KV-DEL-1")
    async def test_delete_again_returns_false(self, backend: StorageBackend) -> None:
        await backend.put("p:k", b"x")
        expect(await backend.delete("p:k"), True, call='backend.delete("p:k")')
        expect(await backend.delete("p:k"), False, call='backend.delete("p:k")')
        expect(await backend.delete("p:k"), False, call='backend.delete("p:k")')

    @pytest.mark.clause("KV-DEL-1")
    async def test_delete_of_an_absent_key_returns_false(self, backend: StorageBackend) -> None:
        expect(await backend.delete("p:never"), False, call='backend.delete("p:never")')

    @pytest.mark.clause("KV-DEL-1")
    async def test_delete_touches_only_its_key(self, backend: StorageBackend) -> None:
        for key in ("p:a", "p:ab", "p:b", "q:a"):
            await backend.put(key, key.encode())
        expect(await backend.delete("p:a"), True, call='backend.delete("p:a")')
        for key in ("p:ab", "p:b", "q:a"):
            expect(
                await stored(backend, key),
                (key.encode(), 1, None),
                key,
                call="stored(backend, key)",
            )
