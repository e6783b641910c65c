"""A client in a second process on the same namespace (KV-SHARED-2), for backends that declare
``shared_across_processes``.

Two instances in one process share whatever the process shares: its memory, its locks, one
embedded engine. Only a client in another process shows whether the store itself is shared, so
these tests talk to one through :class:`conformance.cross_process.Peer`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from conformance.contract.base import Timeline, conflicts_seen_both_ways, stored
from conformance.cross_process import Peer, increment, reference_of
from conformance.harness import BackendFactory, ManualClock
from pmcp_tasks.backend import BackendCapabilities, StorageBackend

INCREMENTS = 150
"""CAS increments per process in the race: enough that two unsynchronised writers collide."""


def requires_cross_process(capabilities: BackendCapabilities) -> None:
    if not capabilities.shared_across_processes:
        why = (
            "backend declares shared_across_processes=False; KV-SHARED-2 needs a client in "
            "another process on the same namespace to see the same data"
        )
        pytest.skip(reason=why)


class CrossProcessContract:
    """Sharing with another process: visibility, expiry and CAS races across the two."""

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    async def peer(
        self,
        backend: StorageBackend,
        backend_factory: BackendFactory,
        namespace: str,
        clock: ManualClock,
    ) -> AsyncIterator[Peer]:
        """The same factory, options and namespace, opened in a second Python process."""
        requires_cross_process(backend.capabilities)
        reference = reference_of(backend_factory)
        if isinstance(reference, str):
            pytest.skip(
                reason="KV-SHARED-2 opens the factory in a second process by its importable "
                f"name, and this one has none: {reference}"
            )
        started = await Peer.start(reference, namespace, clock)
        try:
            yield started
        finally:
            await started.aclose()

    @pytest.mark.pmcp_clause("KV-CAP-1")
    async def test_sharing_declarations_are_consistent(
        self, capabilities: BackendCapabilities
    ) -> None:
        assert type(capabilities.shared_in_process) is bool, capabilities
        assert type(capabilities.shared_across_processes) is bool, capabilities
        if capabilities.shared_across_processes:
            assert capabilities.shared_in_process, capabilities

    @pytest.mark.pmcp_clause("KV-SHARED-2")
    async def test_client_in_another_process_sees_the_same_records(
        self, backend: StorageBackend, peer: Peer
    ) -> None:
        await backend.put("p:a", b"one")
        assert await peer.get("p:a") == await backend.get("p:a"), "KV-SHARED-2: the other view"
        assert await peer.put("p:a", b"two") == 2
        assert await stored(backend, "p:a") == (b"two", 2, None)
        assert await peer.list_keys("p:") == ["p:a"]
        assert await peer.delete("p:a") is True
        assert await backend.get("p:a") is None
        await conflicts_seen_both_ways(peer, backend)

    @pytest.mark.pmcp_clause("KV-SHARED-2", "KV-LIVE-2")
    async def test_expiry_is_the_same_in_both_processes(
        self, backend: StorageBackend, peer: Peer, timeline: Timeline
    ) -> None:
        expires_at = timeline.soon()
        await backend.put("p:e", b"x", expires_at=expires_at)
        await peer.put("p:f", b"y", expires_at=expires_at)
        assert await peer.get("p:e") == await backend.get("p:e"), "KV-SHARED-2: the other view"
        assert await stored(backend, "p:f") == (b"y", 1, expires_at)
        await timeline.pass_expiry(expires_at)
        assert await peer.get("p:e") is None
        assert await backend.get("p:f") is None
        assert await peer.list_keys("p:") == []
        assert await peer.put("p:e", b"new") == 1, "an expired record is absent for put"
        assert await peer.cleanup_expired() in (0, 1), "only p:f can be left to remove"
        assert await backend.cleanup_expired() == 0
        assert await stored(backend, "p:e") == (b"new", 1, None)

    @pytest.mark.pmcp_clause("KV-SHARED-2", "KV-CAS-5")
    async def test_cas_increments_from_two_processes_lose_none(
        self, backend: StorageBackend, peer: Peer
    ) -> None:
        """Both processes read and CAS the same counter at once; every acknowledged CAS counts."""
        await backend.put("p:n", b"0")
        assert await peer.get("p:n") is not None, "KV-SHARED-2: the other process sees nothing"
        theirs, ours = await asyncio.gather(
            peer.increment("p:n", INCREMENTS), increment(backend, "p:n", INCREMENTS)
        )
        acked = theirs["acked"] + ours["acked"]
        final = await stored(backend, "p:n")
        assert final == (str(acked).encode(), 1 + acked, None), (
            f"KV-SHARED-2: {acked} CAS updates were acknowledged ({theirs} in the other process, "
            f"{ours} here) "
            f"but the counter holds {final!r}: updates were lost or versions reused"
        )
