"""list_by_prefix (KV-LIST-*): live records of one partition, ascending, exact pages."""

from __future__ import annotations

import random
from functools import partial
from typing import Any

import pytest

from conformance.contract.base import Timeline, listed_keys
from conformance.contract.keys import assert_all_value_errors
from pmcp_tasks.backend import StorageBackend

# Deliberately spans the alphabet's code-point range: '%' < '-' < '.' < digits < upper < '_' <
# lower < '~', which a backend sorting by anything but code points gets wrong.
ITEMS = ["%41", "-", ".", "0", "09", "1", "A", "Z", "_", "a", "a-", "a.", "a0", "aa", "z", "~"]


async def fill(backend: StorageBackend, partition: str, items: list[str]) -> list[str]:
    keys = [f"{partition}:{item}" for item in items]
    shuffled = keys[:]
    random.Random(7).shuffle(shuffled)
    for key in shuffled:
        await backend.put(key, key.encode())
    return sorted(keys)


async def paged_keys(backend: StorageBackend, prefix: str, limit: int, most: int) -> list[str]:
    """Every key of a listing, by pages of ``limit`` with ``after`` = the last key, stopping at
    the first short page (or after ``most`` pages, so a backend that never ends cannot hang)."""
    seen: list[str] = []
    after: str | None = None
    for _ in range(most):
        page = await listed_keys(backend, prefix, after=after, limit=limit)
        seen.extend(page)
        if len(page) < limit:
            break
        after = page[-1]
    return seen


class ListingContract:
    """list_by_prefix."""

    pytestmark = pytest.mark.anyio

    @pytest.mark.pmcp_clause("KV-LIST-1")
    async def test_prefix_must_name_a_partition(self, backend: StorageBackend) -> None:
        loose: Any = backend
        await assert_all_value_errors(
            [
                (f"list_by_prefix({prefix!r})", partial(loose.list_by_prefix, prefix))
                for prefix in ("", "p", "ab", ":", ":x", "a b:", "a*:", "{a}:", "p:*", None, b"p:")
            ]
        )

    @pytest.mark.pmcp_clause("KV-LIST-2")
    async def test_partition_prefix_is_bounded_at_the_colon(self, backend: StorageBackend) -> None:
        for key in ("a:1", "a:2", "ab:1", "a%3A:1", "a.:1", "b:1", "A:1"):
            await backend.put(key, key.encode())
        assert await listed_keys(backend, "a:") == ["a:1", "a:2"]
        assert await listed_keys(backend, "ab:") == ["ab:1"]
        assert await listed_keys(backend, "nothing:") == []

    @pytest.mark.pmcp_clause("KV-LIST-2")
    async def test_item_prefix_selects_within_the_partition(self, backend: StorageBackend) -> None:
        for key in ("a:x", "a:x1", "a:xy", "a:y", "a:Xx", "b:x"):
            await backend.put(key, key.encode())
        assert await listed_keys(backend, "a:x") == ["a:x", "a:x1", "a:xy"]
        assert await listed_keys(backend, "a:y") == ["a:y"]
        assert await listed_keys(backend, "a:z") == []

    @pytest.mark.pmcp_clause("KV-LIST-2")
    async def test_listing_returns_each_records_data_version_and_expiry(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        later = timeline.later()
        await backend.put("p:a", b"a1")
        await backend.put("p:a", b"a2", expires_at=later)
        await backend.put_if_version("p:b", b"b1", 0)
        await listed_keys(backend, "p:")  # in order, before the records are compared
        got = [(k, r.data, r.version, r.expires_at) for k, r in await backend.list_by_prefix("p:")]
        assert got == [("p:a", b"a2", 2, later), ("p:b", b"b1", 1, None)]

    @pytest.mark.pmcp_clause("KV-LIST-3")
    async def test_listing_is_ascending_in_code_point_order(self, backend: StorageBackend) -> None:
        expected = await fill(backend, "p", ITEMS)
        assert await listed_keys(backend, "p:") == expected

    @pytest.mark.pmcp_clause("KV-LIST-4")
    async def test_after_a_stored_key_is_exclusive(self, backend: StorageBackend) -> None:
        keys = await fill(backend, "p", ITEMS)
        for index, after in enumerate(keys):
            assert await listed_keys(backend, "p:", after=after) == keys[index + 1 :], after

    @pytest.mark.pmcp_clause("KV-LIST-4")
    async def test_after_is_exclusive_under_an_item_prefix(self, backend: StorageBackend) -> None:
        """``after`` equal to the prefix's own key, or inside the prefix: a backend that bounds
        the range by the prefix and by ``after`` separately can keep the key at the seam."""
        await fill(backend, "p", ["a", "ab", "abc", "abd", "b"])
        for after, want in (
            ("p:a", ["p:ab", "p:abc", "p:abd"]),
            ("p:ab", ["p:abc", "p:abd"]),
            ("p:abc", ["p:abd"]),
            ("p:abd", []),
            ("p:b", []),
        ):
            got = await listed_keys(backend, "p:ab", after=after)
            assert got == want

    @pytest.mark.pmcp_clause("KV-LIST-4")
    async def test_after_need_not_be_a_stored_key(self, backend: StorageBackend) -> None:
        keys = await fill(backend, "p", ["b", "d", "f"])
        for after, want in (
            ("p:c", ["p:d", "p:f"]),
            ("p:", keys),
            ("p:a", keys),
            ("p:g", []),
            ("o:zzz", keys),
            ("q:", []),
            ("", keys),
        ):
            got = await listed_keys(backend, "p:", after=after)
            assert got == want

    @pytest.mark.pmcp_clause("KV-LIST-5")
    async def test_limit_caps_the_page_and_pages_are_full(self, backend: StorageBackend) -> None:
        keys = await fill(backend, "p", ITEMS)
        for limit in (1, 2, 5, len(keys) - 1, len(keys), len(keys) + 1, 1000):
            assert await listed_keys(backend, "p:", limit=limit) == keys[:limit], limit

    @pytest.mark.pmcp_clause("KV-LIST-5", "KV-LIST-4")
    @pytest.mark.parametrize("limit", [1, 3, 7])
    async def test_paging_visits_exactly_one_full_listing(
        self, backend: StorageBackend, limit: int
    ) -> None:
        keys = await fill(backend, "p", ITEMS)
        await fill(backend, "pq", ["a", "b"])
        await fill(backend, "o", ["z"])
        seen = await paged_keys(backend, "p:", limit, most=len(keys) + 2)
        assert seen == keys

    @pytest.mark.pmcp_clause("KV-LIST-5", "KV-LIVE-2")
    async def test_pages_are_full_when_expired_records_sit_between_live_ones(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        soon, later = timeline.soon(), timeline.later()
        live = []
        for i in range(12):
            key = f"p:{i:02d}"
            expired = i % 3 != 2
            await backend.put(key, b"x", expires_at=soon if expired else later)
            if not expired:
                live.append(key)
        await timeline.pass_expiry(soon)
        assert await listed_keys(backend, "p:", limit=2) == live[:2]
        assert await listed_keys(backend, "p:", after=live[0], limit=3) == live[1:4]
        assert await listed_keys(backend, "p:") == live

    @pytest.mark.pmcp_clause("KV-LIST-5", "KV-LIVE-2")
    async def test_pages_are_full_across_long_runs_of_dead_records(
        self, backend: StorageBackend, timeline: Timeline
    ) -> None:
        """Runs of 70 dead records, longer than any batch a backend might fetch and filter."""
        soon, later = timeline.soon(), timeline.later()
        live = []
        for i in range(300):
            key = f"p:{i:03d}"
            expired = i % 75 >= 5  # 5 live, then 70 dead, 4 times over
            await backend.put(key, b"x", expires_at=soon if expired else later)
            if not expired:
                live.append(key)
        await timeline.pass_expiry(soon)
        for limit in (1, 4, 5, 6, 19, 20, 21):
            got = await listed_keys(backend, "p:", limit=limit)
            assert got == live[:limit], (
                f"KV-LIST-5: limit={limit}: listed {got}, the live keys are {live}"
            )
        got = await listed_keys(backend, "p:", after=live[4], limit=3)
        assert got == live[5:8], f"KV-LIST-5: after {live[4]!r}: listed {got}, want {live[5:8]}"
        seen = await paged_keys(backend, "p:", 3, most=len(live) + 2)
        assert seen == live, "KV-LIST-5: pages must be full"

    @pytest.mark.pmcp_clause("KV-LIST-2")
    async def test_a_large_partition_is_listed_whole(self, backend: StorageBackend) -> None:
        """Far more records than one page or scan batch of a typical store returns."""
        keys = await fill(backend, "p", [f"{i:04d}" for i in range(600)])
        got = await listed_keys(backend, "p:")
        missing, extra = sorted(set(keys) - set(got)), sorted(set(got) - set(keys))
        assert got == keys, (
            f"listed {len(got)} of {len(keys)} keys; missing {missing[:5]}..., extra {extra[:5]}"
        )

    @pytest.mark.pmcp_clause("KV-LIST-4")
    @pytest.mark.parametrize(
        "item", ["a\u00e9", "a\U0001f600", "\u0100", "a\uffff", "a\U00010000", "~\u0080", "0\ud7ff"]
    )
    async def test_non_ascii_after_is_compared_by_code_point(
        self, backend: StorageBackend, item: str
    ) -> None:
        """``after`` is any str: compared by code point (= UTF-8 bytes), not UTF-16 units."""
        keys = await fill(backend, "p", ITEMS)
        after = f"p:{item}"
        want = [key for key in keys if key > after]
        got = await listed_keys(backend, "p:", after=after)
        assert got == want, f"after={after!r}: listed {got}, code-point order gives {want}"
