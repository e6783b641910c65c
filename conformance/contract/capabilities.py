"""Capabilities, concurrency, errors, closing (KV-CAP-1, KV-CONC-1, KV-ERR-1, KV-CLOSE-1).

Each declared capability is also checked where it matters: ``max_record_bytes`` in
``sizes``, ``shared`` in ``shared``, ``injectable_clock`` in ``expiry``.
"""

from __future__ import annotations

from functools import partial

import pytest

from conformance.contract.base import OpenClient, listed_keys, run_concurrently, stored
from pmcp_tasks.backend import BackendCapabilities, StorageBackend
from pmcp_tasks.errors import RecordNotFound, StorageError, VersionConflict


class CapabilitiesContract:
    """Capabilities, concurrency, errors, closing."""

    pytestmark = pytest.mark.anyio

    @pytest.mark.pmcp_clause("KV-CAP-1")
    async def test_capabilities_are_well_formed(self, capabilities: BackendCapabilities) -> None:
        assert isinstance(capabilities, BackendCapabilities)
        limit = capabilities.max_record_bytes
        assert limit is None or (type(limit) is int and limit >= 1), limit
        assert type(capabilities.shared) is bool
        assert type(capabilities.injectable_clock) is bool

    @pytest.mark.pmcp_clause("KV-CONC-1")
    async def test_many_tasks_on_many_keys_at_once(self, backend: StorageBackend) -> None:
        keys = [f"p:{i:03d}" for i in range(40)]
        created = await run_concurrently([partial(backend.put, key, key.encode()) for key in keys])
        assert created == [1] * len(keys), created
        updated = await run_concurrently(
            [partial(backend.put_if_version, key, b"u" + key.encode(), 1) for key in keys]
        )
        assert updated == [2] * len(keys), updated
        for key in keys:
            assert await stored(backend, key) == (b"u" + key.encode(), 2, None), key
        deleted = await run_concurrently([partial(backend.delete, key) for key in keys[::2]])
        assert deleted == [True] * len(keys[::2]), deleted
        assert await listed_keys(backend, "p:") == keys[1::2]

    @pytest.mark.pmcp_clause("KV-ERR-1")
    async def test_contract_errors_are_storage_errors(self, backend: StorageBackend) -> None:
        await backend.put("p:k", b"x")
        with pytest.raises(StorageError) as conflict:
            await backend.put_if_version("p:k", b"y", 5)
        assert isinstance(conflict.value, VersionConflict), repr(conflict.value)
        with pytest.raises(StorageError) as missing:
            await backend.put_if_version("p:absent", b"y", 5)
        assert isinstance(missing.value, RecordNotFound), repr(missing.value)

    @pytest.mark.pmcp_clause("KV-CLOSE-1")
    async def test_aclose_may_be_called_twice(self, open_client: OpenClient) -> None:
        client = await open_client()
        await client.put("p:k", b"x")
        await client.aclose()
        await client.aclose()

    @pytest.mark.pmcp_clause("KV-CLOSE-1")
    async def test_closing_one_client_leaves_the_others_working(
        self, backend: StorageBackend, open_client: OpenClient
    ) -> None:
        client = await open_client()
        await client.aclose()
        assert await backend.put("p:k", b"x") == 1
        assert await stored(backend, "p:k") == (b"x", 1, None)
