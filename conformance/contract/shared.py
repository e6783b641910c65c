"""Two clients on one namespace (KV-SHARED-1), for backends that declare ``shared``."""

from __future__ import annotations

from functools import partial

import pytest

from conformance.contract.base import (
    OpenClient,
    Timeline,
    conflicts_seen_both_ways,
    listed_keys,
    requires_shared,
    run_concurrently,
    stored,
)
from pmcp_tasks.backend import BackendCapabilities, StorageBackend
from pmcp_tasks.errors import RecordNotFound


class SharedContract:
    """Shared namespaces across client instances."""

    pytestmark = pytest.mark.anyio

    @pytest.mark.pmcp_clause("KV-SHARED-1", "KV-CAP-1")
    async def test_second_client_sees_the_same_records(
        self, backend: StorageBackend, open_client: OpenClient, capabilities: BackendCapabilities
    ) -> None:
        requires_shared(capabilities, "KV-SHARED-1")
        second = await open_client()
        await backend.put("p:a", b"one")
        assert await stored(second, "p:a") == (b"one", 1, None)
        assert await second.put("p:a", b"two") == 2
        assert await stored(backend, "p:a") == (b"two", 2, None)
        assert await listed_keys(second, "p:") == ["p:a"]
        assert await second.delete("p:a") is True
        assert await backend.get("p:a") is None
        with pytest.raises(RecordNotFound):
            await backend.put_if_version("p:a", b"x", 2)

    @pytest.mark.pmcp_clause("KV-SHARED-1")
    async def test_cas_between_clients_detects_the_other_write(
        self, backend: StorageBackend, open_client: OpenClient, capabilities: BackendCapabilities
    ) -> None:
        requires_shared(capabilities, "KV-SHARED-1")
        await conflicts_seen_both_ways(backend, await open_client())

    @pytest.mark.pmcp_clause("KV-SHARED-1", "KV-CAS-5")
    async def test_concurrent_cas_across_clients_has_one_winner(
        self, backend: StorageBackend, open_client: OpenClient, capabilities: BackendCapabilities
    ) -> None:
        requires_shared(capabilities, "KV-SHARED-1")
        clients = [backend, await open_client(), await open_client()]
        await backend.put("p:k", b"start")
        results = await run_concurrently(
            [partial(clients[i % 3].put_if_version, "p:k", f"c{i}".encode(), 1) for i in range(9)]
        )
        winners = [i for i, r in enumerate(results) if r == 2]
        assert len(winners) == 1, f"{len(winners)} CAS calls won across clients: {results!r}"
        assert await stored(backend, "p:k") == (f"c{winners[0]}".encode(), 2, None)

    @pytest.mark.pmcp_clause("KV-SHARED-1")
    async def test_second_client_sees_expiries_and_expires_alike(
        self,
        backend: StorageBackend,
        open_client: OpenClient,
        capabilities: BackendCapabilities,
        timeline: Timeline,
    ) -> None:
        requires_shared(capabilities, "KV-SHARED-1")
        second = await open_client()
        soon, later = timeline.soon(), timeline.later()
        await backend.put("p:soon", b"s", expires_at=soon)
        await backend.put("p:later", b"l", expires_at=later)
        assert await second.put_if_version("p:cas", b"c", 0, expires_at=soon) == 1
        for key, want in (("p:soon", (b"s", 1, soon)), ("p:later", (b"l", 1, later))):
            got = await stored(second, key)
            assert got == want, f"second client: get({key!r}) returned {got!r}, want {want!r}"
        got = await stored(backend, "p:cas")
        assert got == (b"c", 1, soon), f"first client: get('p:cas') returned {got!r}"
        await timeline.pass_expiry(soon)
        for client, name in ((backend, "first"), (second, "second")):
            for key in ("p:soon", "p:cas"):
                got = await stored(client, key)
                assert got is None, f"{name} client: {key!r} is still live: {got!r}"
            listed = await listed_keys(client, "p:")
            assert listed == ["p:later"], f"{name} client lists {listed}"
        assert await second.put("p:soon", b"new") == 1, "an expired record was counted"
