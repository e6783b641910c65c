"""Namespaces (KV-ISO-1): two namespaces never see each other's records, through any method."""

from __future__ import annotations

import pytest

from conformance.contract.base import OpenClient, Timeline, listed_keys, stored
from conformance.harness import fresh_namespace
from pmcp_tasks.backend import StorageBackend
from pmcp_tasks.errors import RecordNotFound


class IsolationContract:
    """Namespace isolation."""

    pytestmark = pytest.mark.anyio

    @pytest.mark.pmcp_clause("KV-ISO-1")
    async def test_other_namespace_sees_nothing(
        self, backend: StorageBackend, open_client: OpenClient
    ) -> None:
        other = await open_client(namespace=fresh_namespace())
        await backend.put("p:k", b"mine")
        assert await other.get("p:k") is None
        assert await other.list_by_prefix("p:") == []
        assert await other.delete("p:k") is False
        with pytest.raises(RecordNotFound):
            await other.put_if_version("p:k", b"theirs", 1)
        assert await other.put("p:k", b"theirs") == 1
        assert await stored(backend, "p:k") == (b"mine", 1, None)
        assert await stored(other, "p:k") == (b"theirs", 1, None)

    @pytest.mark.pmcp_clause("KV-ISO-1")
    async def test_cleanup_counts_only_its_own_namespace(
        self, backend: StorageBackend, open_client: OpenClient, timeline: Timeline
    ) -> None:
        other = await open_client(namespace=fresh_namespace())
        soon = timeline.soon()
        await backend.put("p:a", b"x", expires_at=soon)
        await backend.put("p:b", b"x", expires_at=soon)
        await other.put("p:a", b"x", expires_at=soon)
        await timeline.pass_expiry(soon)
        assert await other.cleanup_expired() == 1
        assert await backend.cleanup_expired() == 2

    @pytest.mark.pmcp_clause("KV-ISO-1")
    async def test_namespaces_that_are_prefixes_of_each_other_stay_apart(
        self,
        backend: StorageBackend,
        open_client: OpenClient,
        namespace: str,
        timeline: Timeline,
    ) -> None:
        """``ns`` and ``ns + "p"``: a store that joins namespace and key without a separator
        (or scans by namespace prefix) mixes them up."""
        longer = await open_client(namespace=namespace + "p")
        soon = timeline.soon()
        await backend.put("pq:k", b"short namespace", expires_at=soon)
        await longer.put("q:k", b"long namespace")
        got = await stored(longer, "q:k")
        assert got == (b"long namespace", 1, None), f"{namespace + 'p'!r} got {got!r}"
        got = await stored(backend, "pq:k")
        assert got == (b"short namespace", 1, soon), f"{namespace!r} got {got!r}"
        listed = await listed_keys(backend, "pq:")
        assert listed == ["pq:k"], f"{namespace!r} lists {listed}"
        await timeline.pass_expiry(soon)
        counted = await longer.cleanup_expired()
        assert counted == 0, (
            f"cleanup_expired() in {namespace + 'p'!r} returned {counted}: it counted the dead "
            f"record of namespace {namespace!r}"
        )
        counted = await backend.cleanup_expired()
        assert counted == 1, f"cleanup_expired() in {namespace!r} returned {counted}, want 1"
        got = await stored(longer, "q:k")
        assert got == (b"long namespace", 1, None), f"after cleanup {namespace + 'p'!r} got {got!r}"
