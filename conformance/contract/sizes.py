"""Sizes (KV-SIZE-*): over the declared limit is ``CapacityExceeded`` and nothing is written."""

from __future__ import annotations

import pytest

from conformance.contract.base import requires_size_limit, stored
from pmcp_tasks.backend import BackendCapabilities, StorageBackend
from pmcp_tasks.errors import CapacityExceeded


def payload(size: int) -> bytes:
    """``size`` bytes that are not all alike, so truncation or re-encoding shows."""
    return bytes((i * 7 + 3) % 256 for i in range(size))


class SizesContract:
    """Record size limits."""

    @pytest.mark.clause("KV-SIZE-1", "KV-CAP-1")
    @pytest.mark.anyio
    async def test_put_over_the_limit_raises_and_writes_nothing(
        self, backend: StorageBackend, capabilities: BackendCapabilities
    ) -> None:
        limit = requires_size_limit(capabilities, "KV-SIZE-1")
        with pytest.raises(CapacityExceeded):
            await backend.put("p:new", payload(limit + 1))
        assert await backend.get("p:new") is None, "a rejected record was (partly) written"
        await backend.put("p:k", b"small")
        with pytest.raises(CapacityExceeded):
            await backend.put("p:k", payload(limit + 1))
        assert await stored(backend, "p:k") == (b"small", 1, None)

    @pytest.mark.clause("KV-SIZE-1", "KV-CAP-1")
    @pytest.mark.anyio
    async def test_cas_over_the_limit_raises_and_writes_nothing(
        self, backend: StorageBackend, capabilities: BackendCapabilities
    ) -> None:
        limit = requires_size_limit(capabilities, "KV-SIZE-1")
        with pytest.raises(CapacityExceeded):
            await backend.put_if_version("p:new", payload(limit + 1), 0)
        assert await backend.get("p:new") is None, "a rejected record was (partly) written"
        await backend.put("p:k", b"small")
        with pytest.raises(CapacityExceeded):
            await backend.put_if_version("p:k", payload(limit + 1), 1)
        assert await stored(backend, "p:k") == (b"small", 1, None)

    @pytest.mark.clause("KV-SIZE-1")
    @pytest.mark.anyio
    async def test_far_over_the_limit_raises(
        self, backend: StorageBackend, capabilities: BackendCapabilities
    ) -> None:
        limit = requires_size_limit(capabilities, "KV-SIZE-1")
        with pytest.raises(CapacityExceeded):
            await backend.put("p:k", payload(2 * limit + 1024))
        assert await backend.get("p:k") is None

    @pytest.mark.clause("KV-SIZE-2", "KV-CAP-1")
    @pytest.mark.anyio
    async def test_largest_allowed_record_round_trips(
        self, backend: StorageBackend, capabilities: BackendCapabilities
    ) -> None:
        limit = requires_size_limit(capabilities, "KV-SIZE-2")
        data = payload(limit)
        assert await backend.put("p:k", data) == 1
        assert await stored(backend, "p:k") == (data, 1, None)
        assert await backend.put_if_version("p:k", data[::-1], 1) == 2
        assert await stored(backend, "p:k") == (data[::-1], 2, None)
        listed = await backend.list_by_prefix("p:")
        assert [(k, r.data) for k, r in listed] == [("p:k", data[::-1])]
