"""Liveness and expiry (KV-LIVE-*, KV-CLEAN-*) on the kit's clock.

With ``injectable_clock`` the kit moves time exactly to an expiry, so every test here is also a
test of the boundary ``clock() == expires_at`` (already dead). Expiries are kept far ahead of
real time, since a server's own expiry follows the real clock.
"""

from __future__ import annotations

from functools import partial
from typing import NoReturn

import pytest

from conformance.contract.base import (
    OpenClient,
    Timeline,
    listed_keys,
    racing_puts,
    requires_manual_clock,
    requires_shared,
    run_concurrently,
    stored,
)
from conformance.harness import ManualClock
from pmcp_tasks.backend import BackendCapabilities, StorageBackend
from pmcp_tasks.errors import RecordNotFound, VersionConflict


async def expired_record(backend: StorageBackend, timeline: Timeline, key: str = "p:k") -> None:
    """A record at ``key`` (version 2, so a fresh write is distinguishable) that has expired."""
    soon = timeline.soon()
    await backend.put(key, b"old")
    await backend.put(key, b"old", expires_at=soon)
    await timeline.pass_expiry(soon)


ODD_FRACTIONS = (0.0001, 0.0004, 0.0005, 0.0009, 1 / 3, 0.1 + 0.2, 2**-20, 0.999999)
"""Fractions of a second past a whole second: sub-millisecond, and not exact in binary or
decimal, where a backend that rounds to milliseconds or to decimal digits goes wrong."""


async def cleaned_exactly(backend: StorageBackend, dead: int) -> None:
    """One cleanup removes and counts all ``dead`` records, a second finds none, and the
    record stored without an expiry (``p:forever``) is untouched."""
    assert await backend.cleanup_expired() == dead
    assert await backend.cleanup_expired() == 0, "a second cleanup found more to remove"
    assert await stored(backend, "p:forever") == (b"x", 1, None)


async def liveness_clause(backend: StorageBackend, clock: ManualClock, default: str) -> str:
    """Which liveness clause a wrong answer about an expired record breaks, found by asking two
    more questions on the kit's clock (a diagnosis, so that one defect is named once):

    * a record dead on every clock (expired a million seconds ago) still shown by ``get`` and
      by listings: no method decides liveness at all, KV-LIVE-1; by one of them only, that
      method forgets it, KV-LIVE-2;
    * a record expiring a second from now, shown by both once the injected clock is a million
      seconds later: expiry follows some other clock, KV-LIVE-3;
    * else ``default``: the defect is the one the test was written for (a boundary, a method).
    """
    now = clock()
    await backend.put("diag:past", b"", expires_at=now - 1e6)
    await backend.put("diag:soon", b"", expires_at=now + 1)
    shown = [await backend.get("diag:past") is not None]
    shown.append("diag:past" in [key for key, _ in await backend.list_by_prefix("diag:")])
    if any(shown):
        return "KV-LIVE-1" if all(shown) else "KV-LIVE-2"
    clock.set(now + 1e6)
    try:
        shown = [await backend.get("diag:soon") is not None]
        shown.append("diag:soon" in [key for key, _ in await backend.list_by_prefix("diag:")])
    finally:
        clock.set(now)
    if all(shown):
        return "KV-LIVE-3"
    return "KV-LIVE-2" if any(shown) else default


async def blame(
    backend: StorageBackend, timeline: Timeline, default: str, failure: AssertionError
) -> NoReturn:
    """Re-raise ``failure`` naming the liveness clause it breaks (:func:`liveness_clause`)."""
    clause = default
    if timeline.manual:
        clause = await liveness_clause(backend, timeline.clock, default)
    raise AssertionError(f"{clause}: {failure}") from failure


class ExpiryContract:
    """Liveness, expiry and cleanup."""

    pytestmark = pytest.mark.anyio

    @pytest.mark.pmcp_clause("KV-LIVE-1")
    @pytest.mark.parametrize("fraction", ODD_FRACTIONS)
    async def test_sub_millisecond_expiry_boundary(
        self,
        backend: StorageBackend,
        clock: ManualClock,
        capabilities: BackendCapabilities,
        fraction: float,
    ) -> None:
        requires_manual_clock(capabilities, "KV-LIVE-1")
        expires_at = clock() + 60 + fraction
        await backend.put("p:k", b"x", expires_at=expires_at)
        kept = await stored(backend, "p:k")
        assert kept == (b"x", 1, expires_at), (
            f"KV-LIVE-4: get returned {kept!r}; the write set expires_at={expires_at!r} (the "
            "boundary below is decided on the value the backend keeps)"
        )
        try:
            for before in (expires_at - 0.00005, expires_at - 1e-6):
                clock.set(before)
                got = await backend.get("p:k")
                assert got is not None, (
                    f"get at clock {before!r} returned None; the record expires at "
                    f"{expires_at!r}, so it is live until then"
                )
            clock.set(expires_at)
            got = await backend.get("p:k")
            assert got is None, f"get at clock == expires_at == {expires_at!r} returned {got!r}"
        except AssertionError as failure:
            await blame(backend, Timeline(clock, capabilities), "KV-LIVE-1", failure)

    @pytest.mark.pmcp_clause("KV-LIVE-4")
    @pytest.mark.parametrize("fraction", ODD_FRACTIONS)
    async def test_odd_expiries_are_returned_exactly(
        self, backend: StorageBackend, timeline: Timeline, fraction: float
    ) -> None:
        expires_at = float(int(timeline.later())) + fraction
        await backend.put("p:put", b"x", expires_at=expires_at)
        await backend.put_if_version("p:cas", b"x", 0, expires_at=expires_at)
        for key in ("p:put", "p:cas"):
            got = await stored(backend, key)
            assert got == (b"x", 1, expires_at), (
                f"get({key!r}) returned {got!r}; the write set expires_at={expires_at!r}"
            )
        listed = [(k, r.expires_at) for k, r in await backend.list_by_prefix("p:")]
        want = [("p:cas", expires_at), ("p:put", expires_at)]
        assert listed == want, f"list_by_prefix('p:') returned {listed!r}, want {want!r}"

    @pytest.mark.pmcp_clause("KV-LIVE-3")
    async def test_expiry_follows_the_clock_when_it_goes_back(
        self, backend: StorageBackend, clock: ManualClock, capabilities: BackendCapabilities
    ) -> None:
        """Only the injected clock decides: not the latest time the backend has seen."""
        requires_manual_clock(capabilities, "KV-LIVE-3")
        start = clock()
        clock.set(start + 600)
        await backend.put("p:probe", b"x")
        assert await stored(backend, "p:probe") == (b"x", 1, None)
        clock.set(start)  # the injected clock goes back, as an NTP step or a test may move it
        expires_at = start + 300
        await backend.put("p:k", b"x", expires_at=expires_at)
        got = await stored(backend, "p:k")
        assert got == (b"x", 1, expires_at), (
            f"at clock {start!r} get returned {got!r} for a record expiring at {expires_at!r}: "
            "expiry was decided on a clock other than the injected one (the latest time seen?)"
        )

    @pytest.mark.pmcp_clause("KV-LIVE-1")
    async def test_record_is_live_until_and_dead_at_its_expiry(
        self, backend: StorageBackend, clock: ManualClock, capabilities: BackendCapabilities
    ) -> None:
        requires_manual_clock(capabilities, "KV-LIVE-1")
        expires_at = clock() + 60
        await backend.put("p:k", b"x", expires_at=expires_at)
        try:
            clock.set(expires_at - 0.001)
            assert await stored(backend, "p:k") == (b"x", 1, expires_at), "dead before its expiry"
            clock.set(expires_at)
            assert await backend.get("p:k") is None, "still live at clock() == expires_at"
        except AssertionError as failure:
            await blame(backend, Timeline(clock, capabilities), "KV-LIVE-1", failure)

    @pytest.mark.pmcp_clause("KV-LIVE-1")
    async def test_record_without_expiry_never_expires(
        self, backend: StorageBackend, clock: ManualClock
    ) -> None:
        await backend.put("p:k", b"x")
        clock.advance(10 * 365 * 86400)
        assert await stored(backend, "p:k") == (b"x", 1, None)

    @pytest.mark.pmcp_clause("KV-LIVE-2")
    async def test_expired_record_is_invisible_to_get(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        await expired_record(backend, timeline)
        try:
            assert await backend.get("p:k") is None
        except AssertionError as failure:
            await blame(backend, timeline, "KV-LIVE-2", failure)

    @pytest.mark.pmcp_clause("KV-LIVE-2")
    async def test_expired_record_is_omitted_from_listings(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        await backend.put("p:a", b"a")
        await expired_record(backend, timeline, "p:b")
        await backend.put("p:c", b"c")
        try:
            assert await listed_keys(backend, "p:") == ["p:a", "p:c"]
            assert await backend.list_by_prefix("p:b") == []
        except AssertionError as failure:
            await blame(backend, timeline, "KV-LIVE-2", failure)

    @pytest.mark.pmcp_clause("KV-LIVE-2")
    async def test_put_over_an_expired_record_starts_at_version_1(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        await expired_record(backend, timeline)
        assert await backend.put("p:k", b"new") == 1
        assert await stored(backend, "p:k") == (b"new", 1, None)

    @pytest.mark.pmcp_clause("KV-PUT-2", "KV-LIVE-2")
    async def test_concurrent_puts_over_an_expired_record_hand_out_1_to_k(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        """The restart at version 1 is one writer's: the others count on from it."""
        await expired_record(backend, timeline)
        await racing_puts(backend, 8, 1, "an expired record (absent: they start at 1)")

    @pytest.mark.pmcp_clause("KV-LIVE-2")
    async def test_cas_treats_an_expired_record_as_missing(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        await expired_record(backend, timeline)
        with pytest.raises(RecordNotFound):
            await backend.put_if_version("p:k", b"stale", 2)
        assert await backend.put_if_version("p:k", b"new", 0) == 1
        assert await stored(backend, "p:k") == (b"new", 1, None)

    @pytest.mark.pmcp_clause("KV-LIVE-2", "KV-DEL-1")
    async def test_delete_of_an_expired_record_returns_false(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        await expired_record(backend, timeline)
        deleted = await backend.delete("p:k")
        if deleted is not False:
            # The same answer for a key never written: delete itself, not liveness, is wrong.
            never = await backend.delete("p:never-written")
            clause = "KV-DEL-1" if never is not False else "KV-LIVE-2"
            raise AssertionError(
                f"{clause}: delete of an expired record returned {deleted!r} (and of a key never "
                f"written {never!r}); the contract says False"
            )
        assert await backend.get("p:k") is None

    @pytest.mark.pmcp_clause("KV-LIVE-3", "KV-CAP-1")
    async def test_expiry_follows_the_injected_clock(
        self, backend: StorageBackend, clock: ManualClock, capabilities: BackendCapabilities
    ) -> None:
        requires_manual_clock(capabilities, "KV-LIVE-3")
        expires_at = clock() + 300
        await backend.put("p:k", b"x", expires_at=expires_at)
        try:
            assert await backend.get("p:k") is not None, (
                "dead although the injected clock says live"
            )
            clock.advance(600)  # real time has not moved: only the injected clock says it expired
            assert await backend.get("p:k") is None, (
                "live although the injected clock passed expiry"
            )
            assert await backend.list_by_prefix("p:") == []
        except AssertionError as failure:
            await blame(backend, Timeline(clock, capabilities), "KV-LIVE-3", failure)

    @pytest.mark.pmcp_clause("KV-LIVE-4")
    async def test_put_without_expiry_clears_an_expiry(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        soon = timeline.soon()
        await backend.put("p:k", b"a", expires_at=soon)
        assert await backend.put("p:k", b"b") == 2
        assert await stored(backend, "p:k") == (b"b", 2, None)
        await timeline.pass_expiry(soon)
        assert await stored(backend, "p:k") == (b"b", 2, None), "the cleared expiry still applied"

    @pytest.mark.pmcp_clause("KV-LIVE-4")
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

    @pytest.mark.pmcp_clause("KV-LIVE-4")
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

    @pytest.mark.pmcp_clause("KV-ARG-3", "KV-LIVE-2")
    async def test_write_with_a_past_expiry_is_accepted_and_not_live(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        past = timeline.now() - 10
        assert await backend.put("p:k", b"x", expires_at=past) == 1
        assert await backend.get("p:k") is None
        assert await backend.put("p:k", b"y", expires_at=past) == 1, "a dead record was counted"
        with pytest.raises(RecordNotFound):
            await backend.put_if_version("p:k", b"z", 1)
        assert await backend.put_if_version("p:k", b"z", 0, expires_at=past) == 1
        assert await backend.list_by_prefix("p:") == []

    @pytest.mark.pmcp_clause("KV-CLEAN-1")
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
        await cleaned_exactly(backend, 4)
        assert await stored(backend, "p:live") == (b"x", 1, later)

    @pytest.mark.pmcp_clause("KV-CLEAN-1")
    async def test_cleanup_removes_hundreds_of_dead_records_in_one_call(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        """More dead records than any batch a backend removes at a time (Redis: 128): a
        cleanup that stops after a full batch leaves the rest and under-counts."""
        soon = timeline.soon()
        for i in range(300):
            await backend.put(f"p:dead{i:03d}", b"x", expires_at=soon)
        await backend.put("p:forever", b"x")
        await timeline.pass_expiry(soon)
        await cleaned_exactly(backend, 300)

    @pytest.mark.pmcp_clause("KV-CLEAN-1")
    async def test_cleanup_of_live_records_removes_nothing(self, backend: StorageBackend) -> None:
        assert await backend.cleanup_expired() == 0
        await backend.put("p:k", b"x")
        assert await backend.cleanup_expired() == 0
        assert await stored(backend, "p:k") == (b"x", 1, None)

    @pytest.mark.pmcp_clause("KV-CLEAN-1", "KV-CAS-1")
    async def test_cleanup_does_not_count_records_rewritten_after_expiry(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        await expired_record(backend, timeline)
        await backend.put_if_version("p:k", b"new", 0)
        assert await backend.cleanup_expired() == 0
        assert await stored(backend, "p:k") == (b"new", 1, None)

    @pytest.mark.pmcp_clause("KV-CLEAN-2")
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
        with pytest.raises(RecordNotFound):
            await backend.put_if_version("p:k", b"y", 1)
        assert await backend.put("p:k", b"y") == 1

    @pytest.mark.pmcp_clause("KV-CAS-3", "KV-LIVE-2")
    async def test_conflict_reports_the_live_version_only(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        await expired_record(backend, timeline)
        await backend.put("p:k", b"new")
        with pytest.raises(VersionConflict) as caught:
            await backend.put_if_version("p:k", b"x", 2)
        assert caught.value.actual == 1

    @pytest.mark.pmcp_clause("KV-CLEAN-1")
    async def test_cleanup_removes_many_dead_records(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        """More dead records than one batch of a typical scan, spread over partitions."""
        soon, later = timeline.soon(), timeline.later()
        for i in range(500):
            await backend.put(f"p{i % 5}:dead{i:03d}", b"x", expires_at=soon)
        for i in range(20):
            await backend.put(f"p{i % 5}:live{i:02d}", b"x", expires_at=later)
        await timeline.pass_expiry(soon)
        removed = await backend.cleanup_expired()
        assert removed == 500, f"cleanup_expired() returned {removed}; 500 records were dead"
        again = await backend.cleanup_expired()
        assert again == 0, f"a second cleanup_expired() returned {again}, want 0"
        for partition in range(5):
            listed = await listed_keys(backend, f"p{partition}:")
            want = [f"p{partition}:live{i:02d}" for i in range(partition, 20, 5)]
            assert listed == want, f"after cleanup p{partition}: lists {listed}, want {want}"

    @pytest.mark.pmcp_clause("KV-CLEAN-1")
    async def test_cleanup_concurrent_with_writes_keeps_every_live_record(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        """Records rewritten while a clean-up runs are live: the clean-up must not take them."""
        soon, later = timeline.soon(), timeline.later()
        keys = [f"p:k{i:03d}" for i in range(60)]
        for key in keys:
            await backend.put(key, b"old", expires_at=soon)
        await timeline.pass_expiry(soon)
        rewrites = [partial(backend.put, key, b"new", expires_at=later) for key in keys[::2]]
        results = await run_concurrently([backend.cleanup_expired, *rewrites])
        errors = [r for r in results if isinstance(r, Exception)]
        assert not errors, f"calls raised during a clean-up: {errors[:3]!r}"
        assert results[1:] == [1] * len(rewrites), (
            f"puts over dead records returned {results[1:]}, want version 1 each"
        )
        assert 30 <= results[0] <= 60, f"cleanup_expired() returned {results[0]}, want 30..60"
        for key in keys[::2]:
            got = await stored(backend, key)
            assert got == (b"new", 1, later), (
                f"get({key!r}) returned {got!r} after a concurrent clean-up; it was rewritten "
                "(live) while the clean-up ran"
            )
        listed = await listed_keys(backend, "p:")
        assert listed == keys[::2], f"list_by_prefix('p:') returned {listed}"

    @pytest.mark.pmcp_clause("KV-CLEAN-1", "KV-SHARED-1")
    async def test_cleanup_from_another_client_removes_the_writers_records(
        self,
        backend: StorageBackend,
        open_client: OpenClient,
        timeline: Timeline,
        capabilities: BackendCapabilities,
    ) -> None:
        requires_shared(capabilities, "KV-CLEAN-1 from a second client")
        other = await open_client()
        soon = timeline.soon()
        for i in range(30):
            await backend.put(f"p:k{i:02d}", b"x", expires_at=soon)
        await backend.put("p:live", b"x")
        await timeline.pass_expiry(soon)
        removed = await other.cleanup_expired()
        assert removed == 30, (
            f"KV-CLEAN-1: cleanup_expired() on a second client returned {removed}; the first "
            "wrote 30 records that are now dead"
        )
        again = await backend.cleanup_expired()
        assert again == 0, (
            f"KV-CLEAN-1: the writer's cleanup_expired() then returned {again}, want 0"
        )
        listed = await listed_keys(other, "p:")
        assert listed == ["p:live"], f"KV-CLEAN-1: list_by_prefix('p:') returned {listed}"

    @pytest.mark.pmcp_clause("KV-CLEAN-1")
    async def test_a_key_rewritten_after_cleanup_is_listed_once(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        """Clean-up removes index entries too: a stale one would list the key twice later."""
        soon = timeline.soon()
        for item in ("a", "b", "c"):
            await backend.put(f"p:{item}", b"x", expires_at=soon)
        await timeline.pass_expiry(soon)
        removed = await backend.cleanup_expired()
        assert removed == 3, f"cleanup_expired() returned {removed}, want 3"
        for item in ("b", "c", "d"):
            await backend.put(f"p:{item}", b"y")
        listed = await listed_keys(backend, "p:")
        assert listed == ["p:b", "p:c", "p:d"], f"list_by_prefix('p:') returned {listed}"
        page = await listed_keys(backend, "p:", limit=2)
        assert page == ["p:b", "p:c"], f"list_by_prefix('p:', limit=2) returned {page}"
