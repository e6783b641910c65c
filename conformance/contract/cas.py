"""put_if_version (KV-CAS-*): create-if-absent, RecordNotFound vs VersionConflict, ``actual``."""

from __future__ import annotations

from functools import partial

import pytest

from conformance.contract.base import Timeline, run_concurrently, stored
from pmcp_tasks.backend import StorageBackend
from pmcp_tasks.errors import RecordNotFound, VersionConflict


class CasContract:
    """Compare-and-set."""

    pytestmark = pytest.mark.anyio

    @pytest.mark.pmcp_clause("KV-CAS-1")
    async def test_expected_0_creates_an_absent_key_at_version_1(
        self, backend: StorageBackend
    ) -> None:
        assert await backend.put_if_version("p:k", b"new", 0) == 1
        assert await stored(backend, "p:k") == (b"new", 1, None)

    @pytest.mark.pmcp_clause("KV-CAS-1")
    async def test_expected_0_on_an_existing_key_conflicts_with_the_current_version(
        self, backend: StorageBackend
    ) -> None:
        for i in range(3):
            await backend.put("p:k", f"v{i}".encode())
        with pytest.raises(VersionConflict) as caught:
            await backend.put_if_version("p:k", b"lost", 0)
        assert (caught.value.key, caught.value.expected, caught.value.actual) == ("p:k", 0, 3)
        assert await stored(backend, "p:k") == (b"v2", 3, None), "a failed create wrote"

    @pytest.mark.pmcp_clause("KV-CAS-2")
    @pytest.mark.parametrize("expected", [1, 2, 7])
    async def test_expected_version_on_an_absent_key_is_not_found(
        self, backend: StorageBackend, expected: int
    ) -> None:
        with pytest.raises(RecordNotFound) as caught:
            await backend.put_if_version("p:absent", b"x", expected)
        assert not isinstance(caught.value, VersionConflict)
        assert caught.value.key == "p:absent"
        assert await backend.get("p:absent") is None, "a failed CAS created the key"

    @pytest.mark.pmcp_clause("KV-CAS-2")
    async def test_expected_version_on_a_deleted_key_is_not_found(
        self, backend: StorageBackend
    ) -> None:
        await backend.put("p:k", b"x")
        await backend.delete("p:k")
        with pytest.raises(RecordNotFound):
            await backend.put_if_version("p:k", b"y", 1)
        assert await backend.get("p:k") is None

    @pytest.mark.pmcp_clause("KV-CAS-3")
    @pytest.mark.parametrize("expected", [1, 2, 4, 9])
    async def test_mismatch_raises_conflict_with_the_real_actual_and_writes_nothing(
        self, backend: StorageBackend, timeline: Timeline, expected: int
    ) -> None:
        later = timeline.later()
        for i in range(3):
            await backend.put("p:k", f"v{i}".encode(), expires_at=later)
        with pytest.raises(VersionConflict) as caught:
            await backend.put_if_version("p:k", b"lost", expected, expires_at=None)
        assert (caught.value.key, caught.value.expected, caught.value.actual) == (
            "p:k",
            expected,
            3,
        )
        assert await stored(backend, "p:k") == (b"v2", 3, later), "a failed CAS wrote"

    @pytest.mark.pmcp_clause("KV-CAS-4")
    async def test_match_writes_and_returns_expected_plus_one(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        await backend.put("p:k", b"v1")
        later = timeline.later()
        assert await backend.put_if_version("p:k", b"v2", 1, expires_at=later) == 2
        assert await stored(backend, "p:k") == (b"v2", 2, later)
        assert await backend.put_if_version("p:k", b"v3", 2) == 3
        assert await stored(backend, "p:k") == (b"v3", 3, None)

    @pytest.mark.pmcp_clause("KV-CAS-4")
    async def test_cas_and_put_share_one_version_sequence(self, backend: StorageBackend) -> None:
        assert await backend.put_if_version("p:k", b"a", 0) == 1
        assert await backend.put("p:k", b"b") == 2
        assert await backend.put_if_version("p:k", b"c", 2) == 3
        assert await backend.put("p:k", b"d") == 4
        assert await stored(backend, "p:k") == (b"d", 4, None)

    @pytest.mark.pmcp_clause("KV-CAS-5")
    async def test_concurrent_cas_on_one_version_has_exactly_one_winner(
        self, backend: StorageBackend
    ) -> None:
        await backend.put("p:k", b"start")
        contenders = 12
        results = await run_concurrently(
            [partial(backend.put_if_version, "p:k", f"c{i}".encode(), 1) for i in range(contenders)]
        )
        winners = [i for i, r in enumerate(results) if r == 2]
        assert len(winners) == 1, f"{len(winners)} CAS calls won version 2: {results!r}"
        losers = [r for r in results if r != 2]
        assert all(isinstance(r, VersionConflict) and r.actual == 2 for r in losers), (
            f"losers must raise VersionConflict(actual=2): {losers!r}"
        )
        assert await stored(backend, "p:k") == (f"c{winners[0]}".encode(), 2, None)

    @pytest.mark.pmcp_clause("KV-CAS-5", "KV-CAS-1")
    async def test_concurrent_creates_have_exactly_one_winner(
        self, backend: StorageBackend
    ) -> None:
        results = await run_concurrently(
            [partial(backend.put_if_version, "p:new", f"c{i}".encode(), 0) for i in range(12)]
        )
        winners = [i for i, r in enumerate(results) if r == 1]
        assert len(winners) == 1, f"{len(winners)} creates succeeded: {results!r}"
        assert all(isinstance(r, VersionConflict) and r.actual == 1 for r in results if r != 1)
        assert await stored(backend, "p:new") == (f"c{winners[0]}".encode(), 1, None)

    @pytest.mark.pmcp_clause("KV-CAS-5")
    async def test_cas_increment_loop_loses_no_update(self, backend: StorageBackend) -> None:
        await backend.put("p:counter", b"0")

        async def increment() -> None:
            while True:
                record = await backend.get("p:counter")
                assert record is not None
                value = int(record.data) + 1
                try:
                    await backend.put_if_version("p:counter", str(value).encode(), record.version)
                    return
                except VersionConflict:
                    continue

        results = await run_concurrently([increment for _ in range(10)])
        assert all(r is None for r in results), results
        assert await stored(backend, "p:counter") == (b"10", 11, None)
