"""Liveness and expiry (KV-LIVE-*, KV-CLEAN-*) on the kit's clock.

With ``injectable_clock`` the kit moves time exactly to an expiry, so every test here is also a
test of the boundary ``clock() == expires_at`` (already dead). Expiries are kept far ahead of
real time, since a server's own expiry follows the real clock.
"""

from __future__ import annotations

import pytest

from conformance.contract.base import Timeline, requires_manual_clock, stored
from conformance.harness import ManualClock
from pmcp_tasks.backend import BackendCapabilities, StorageBackend
from pmcp_tasks.errors import NotFound, VersionConflict


async def expired_record(backend: StorageBackend, timeline: Timeline, key: str = "p:k") -> None:
    """A record at ``key`` (version 2, so a fresh write is distinguishable) that has expired."""
    soon = timeline.soon()
    await backend.put(key, b"old")
    await backend.put(key, b"old", expires_at=soon)
    await timeline.pass_expiry(soon)


class ExpiryContract:
    """Liveness, expiry and cleanup."""

    @pytest.mark.clause("KV-LIVE-1")
    @pytest.mark.anyio
    async def test_record_is_live_until_and_dead_at_its_expiry(
        self, backend: StorageBackend, clock: ManualClock, capabilities: BackendCapabilities
    ) -> None:
        requires_manual_clock(capabilities, "KV-LIVE-1")
        expires_at = clock() + 60
        await backend.put("p:k", b"x", expires_at=expires_at)
        clock.set(expires_at - 0.001)
        assert await stored(backend, "p:k") == (b"x", 1, expires_at), "dead before its expiry"
        clock.set(expires_at)
        assert await backend.get("p:k") is None, "still live at clock() == expires_at"

    @pytest.mark.clause("KV-LIVE-1")
    @pytest.mark.anyio
    async def test_record_without_expiry_never_expires(
        self, backend: StorageBackend, clock: ManualClock
    ) -> None:
        await backend.put("p:k", b"x")
        clock.advance(10 * 365 * 86400)
        assert await stored(backend, "p:k") == (b"x", 1, None)

    @pytest.mark.clause("KV-LIVE-2")
    @pytest.mark.anyio
    async def test_expired_record_is_invisible_to_get(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        await expired_record(backend, timeline)
        assert await backend.get("p:k") is None

    @pytest.mark.clause("KV-LIVE-2")
    @pytest.mark.anyio
    async def test_expired_record_is_omitted_from_listings(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        await backend.put("p:a", b"a")
        await expired_record(backend, timeline, "p:b")
        await backend.put("p:c", b"c")
        assert [k for k, _ in await backend.list_by_prefix("p:")] == ["p:a", "p:c"]
        assert await backend.list_by_prefix("p:b") == []

    @pytest.mark.clause("KV-LIVE-2")
    @pytest.mark.anyio
    async def test_put_over_an_expired_record_starts_at_version_1(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        await expired_record(backend, timeline)
        assert await backend.put("p:k", b"new") == 1
        assert await stored(backend, "p:k") == (b"new", 1, None)

    @pytest.mark.clause("KV-LIVE-2")
    @pytest.mark.anyio
    async def test_cas_treats_an_expired_record_as_missing(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        await expired_record(backend, timeline)
        with pytest.raises(NotFound):
            await backend.put_if_version("p:k", b"stale", 2)
        assert await backend.put_if_version("p:k", b"new", 0) == 1
        assert await stored(backend, "p:k") == (b"new", 1, None)

    @pytest.mark.clause("KV-LIVE-2", "KV-DEL-1")
    @pytest.mark.anyio
    async def test_delete_of_an_expired_record_returns_false(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        await expired_record(backend, timeline)
        assert await backend.delete("p:k") is False
        assert await backend.get("p:k") is None

    @pytest.mark.clause("KV-LIVE-3", "KV-CAP-1")
    @pytest.mark.anyio
    async def test_expiry_follows_the_injected_clock(
        self, backend: StorageBackend, clock: ManualClock, capabilities: BackendCapabilities
    ) -> None:
        requires_manual_clock(capabilities, "KV-LIVE-3")
        expires_at = clock() + 300
        await backend.put("p:k", b"x", expires_at=expires_at)
        assert await backend.get("p:k") is not None, "dead although the injected clock says live"
        clock.advance(600)  # real time has not moved: only the injected clock says it expired
        assert await backend.get("p:k") is None, "live although the injected clock passed expiry"
        assert await backend.list_by_prefix("p:") == []

    @pytest.mark.clause("KV-LIVE-4")
    @pytest.mark.anyio
    async def test_put_without_expiry_clears_an_expiry(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        soon = timeline.soon()
        await backend.put("p:k", b"a", expires_at=soon)
        assert await backend.put("p:k", b"b") == 2
        assert await stored(backend, "p:k") == (b"b", 2, None)
        await timeline.pass_expiry(soon)
        assert await stored(backend, "p:k") == (b"b", 2, None), "the cleared expiry still applied"

    @pytest.mark.clause("KV-LIVE-4")
    @pytest.mark.anyio
    async def test_cas_sets_and_clears_the_expiry(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        soon, later = timeline.soon(), timeline.later()
        await backend.put("p:k", b"a", expires_at=later)
        assert await backend.put_if_version("p:k", b"b", 1, expires_at=soon) == 2
        assert await stored(backend, "p:k") == (b"b", 2, soon)
        assert await backend.put_if_version("p:k", b"c", 2) == 3
        assert await stored(backend, "p:k") == (b"c", 3, None)
        assert await backend.put_if_version("p:k", b"d", 3, expires_at=soon) == 4
        await timeline.pass_expiry(soon)
        assert await backend.get("p:k") is None, "the expiry set by put_if_version did not apply"

    @pytest.mark.clause("KV-LIVE-4")
    @pytest.mark.anyio
    async def test_put_moves_an_expiry_earlier_and_later(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        soon, later = timeline.soon(), timeline.later()
        await backend.put("p:early", b"x", expires_at=later)
        await backend.put("p:early", b"x", expires_at=soon)
        await backend.put("p:late", b"x", expires_at=soon)
        await backend.put("p:late", b"y", expires_at=later)
        await timeline.pass_expiry(soon)
        assert await backend.get("p:early") is None, "a shortened expiry did not apply"
        assert await stored(backend, "p:late") == (b"y", 2, later), "an extended expiry was lost"

    @pytest.mark.clause("KV-ARG-3", "KV-LIVE-2")
    @pytest.mark.anyio
    async def test_write_with_a_past_expiry_is_accepted_and_not_live(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        past = timeline.now() - 10
        assert await backend.put("p:k", b"x", expires_at=past) == 1
        assert await backend.get("p:k") is None
        assert await backend.put("p:k", b"y", expires_at=past) == 1, "a dead record was counted"
        with pytest.raises(NotFound):
            await backend.put_if_version("p:k", b"z", 1)
        assert await backend.put_if_version("p:k", b"z", 0, expires_at=past) == 1
        assert await backend.list_by_prefix("p:") == []

    @pytest.mark.clause("KV-CLEAN-1")
    @pytest.mark.anyio
    async def test_cleanup_removes_dead_records_and_counts_them(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        soon, later = timeline.soon(), timeline.later()
        for i in range(3):
            await backend.put(f"p:dead{i}", b"x", expires_at=soon)
        await backend.put("q:dead", b"x", expires_at=soon)
        await backend.put("p:live", b"x", expires_at=later)
        await backend.put("p:forever", b"x")
        await timeline.pass_expiry(soon)
        assert await backend.cleanup_expired() == 4
        assert await backend.cleanup_expired() == 0, "a second cleanup found more to remove"
        assert await stored(backend, "p:live") == (b"x", 1, later)
        assert await stored(backend, "p:forever") == (b"x", 1, None)

    @pytest.mark.clause("KV-CLEAN-1")
    @pytest.mark.anyio
    async def test_cleanup_of_live_records_removes_nothing(self, backend: StorageBackend) -> None:
        assert await backend.cleanup_expired() == 0
        await backend.put("p:k", b"x")
        assert await backend.cleanup_expired() == 0
        assert await stored(backend, "p:k") == (b"x", 1, None)

    @pytest.mark.clause("KV-CLEAN-1", "KV-CAS-1")
    @pytest.mark.anyio
    async def test_cleanup_does_not_count_records_rewritten_after_expiry(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        await expired_record(backend, timeline)
        await backend.put_if_version("p:k", b"new", 0)
        assert await backend.cleanup_expired() == 0
        assert await stored(backend, "p:k") == (b"new", 1, None)

    @pytest.mark.clause("KV-CLEAN-2")
    @pytest.mark.anyio
    async def test_removed_records_never_come_back(
        self, backend: StorageBackend, clock: ManualClock, capabilities: BackendCapabilities
    ) -> None:
        requires_manual_clock(capabilities, "KV-CLEAN-2")
        start = clock()
        expires_at = start + 60
        await backend.put("p:k", b"x", expires_at=expires_at)
        clock.set(expires_at)
        assert await backend.cleanup_expired() == 1
        clock.set(start)  # before the expiry again: a removed record must stay removed
        assert await backend.get("p:k") is None
        assert await backend.list_by_prefix("p:") == []
        assert await backend.delete("p:k") is False
        with pytest.raises(NotFound):
            await backend.put_if_version("p:k", b"y", 1)
        assert await backend.put("p:k", b"y") == 1

    @pytest.mark.clause("KV-CAS-3", "KV-LIVE-2")
    @pytest.mark.anyio
    async def test_conflict_reports_the_live_version_only(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        await expired_record(backend, timeline)
        await backend.put("p:k", b"new")
        with pytest.raises(VersionConflict) as caught:
            await backend.put_if_version("p:k", b"x", 2)
        assert caught.value.actual == 1
