"""Data and versions (KV-DATA-1, KV-VER-1): bytes round-trip exactly; versions are exact ints."""

from __future__ import annotations

import random

import pytest

from conformance.contract.base import raised, requires_room_for, requires_seed, stored
from conformance.harness import KitTarget
from pmcp_tasks.backend import MAX_VERSION, BackendCapabilities, StorageBackend
from pmcp_tasks.errors import CapacityExceeded, VersionConflict

MIB = 1024 * 1024
PAYLOADS = {
    "empty": b"",
    "nul": b"\x00",
    "nuls": b"\x00\x00a\x00",
    "invalid-utf8": b"\xc3\x28\xa0\xa1\xff\xfe",
    "latin1": "caf\u00e9".encode("latin-1"),
    "all-bytes": bytes(range(256)),
    "all-bytes-reversed": bytes(range(255, -1, -1)),
    "whitespace": b" \t\r\n ",
    "lua-and-json-specials": b'"\\%[]{}\x1b',
}


def first_difference(got: bytes, want: bytes) -> int | None:
    """Where two byte strings first differ (None if equal): a 1 MiB diff is not readable."""
    if got == want:
        return None
    differ = (i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b)
    return next(differ, min(len(got), len(want)))


class DataContract:
    """Byte-exact data and exact versions."""

    pytestmark = pytest.mark.anyio

    @pytest.mark.pmcp_clause("KV-DATA-1")
    @pytest.mark.parametrize("name", list(PAYLOADS))
    async def test_data_round_trips_byte_exact(
        self, backend: StorageBackend, capabilities: BackendCapabilities, name: str
    ) -> None:
        data = PAYLOADS[name]
        requires_room_for(capabilities, len(data), "KV-DATA-1")
        await backend.put("p:put", data)
        await backend.put_if_version("p:cas", data, 0)
        for key in ("p:put", "p:cas"):
            assert await stored(backend, key) == (data, 1, None), key
        listed = await backend.list_by_prefix("p:")
        assert [(k, r.data) for k, r in listed] == [("p:cas", data), ("p:put", data)]

    @pytest.mark.pmcp_clause("KV-DATA-1")
    async def test_one_mib_round_trips(
        self, backend: StorageBackend, capabilities: BackendCapabilities
    ) -> None:
        requires_room_for(capabilities, MIB, "KV-DATA-1 (1 MiB)")
        data = random.Random(1).randbytes(MIB)
        assert await backend.put("p:big", data) == 1
        record = await backend.get("p:big")
        assert record is not None
        assert len(record.data) == MIB
        assert record.data == data

    @pytest.mark.pmcp_clause("KV-VER-1")
    async def test_versions_are_ints(self, backend: StorageBackend) -> None:
        version = await backend.put("p:k", b"x")
        record = await backend.get("p:k")
        assert record is not None
        for value in (version, record.version, (await backend.list_by_prefix("p:"))[0][1].version):
            assert type(value) is int, f"version {value!r} is a {type(value).__name__}"

    @pytest.mark.pmcp_clause("KV-VER-1")
    async def test_versions_past_2_53_stay_exact(
        self, kit_target: KitTarget, backend: StorageBackend
    ) -> None:
        seeded = requires_seed(kit_target, "KV-VER-1")
        await seeded.seed("p:k", b"x", 2**53, None)
        assert await backend.put("p:k", b"y") == 2**53 + 1
        assert await stored(backend, "p:k") == (b"y", 2**53 + 1, None)
        assert await backend.put_if_version("p:k", b"z", 2**53 + 1) == 2**53 + 2
        record = await backend.get("p:k")
        assert record is not None
        assert type(record.version) is int
        assert record.version == 2**53 + 2

    @pytest.mark.pmcp_clause("KV-VER-1")
    async def test_versions_up_to_2_63_minus_1_and_no_further(
        self, kit_target: KitTarget, backend: StorageBackend
    ) -> None:
        seeded = requires_seed(kit_target, "KV-VER-1")
        await seeded.seed("p:k", b"x", MAX_VERSION - 2, None)
        assert await backend.put("p:k", b"y") == MAX_VERSION - 1
        assert await backend.put_if_version("p:k", b"z", MAX_VERSION - 1) == MAX_VERSION
        with pytest.raises(CapacityExceeded):
            await backend.put("p:k", b"over")
        with pytest.raises(CapacityExceeded):
            await backend.put_if_version("p:k", b"over", MAX_VERSION)
        assert await stored(backend, "p:k") == (b"z", MAX_VERSION, None)

    @pytest.mark.pmcp_clause("KV-VER-1")
    async def test_versions_past_2_53_are_listed_exactly_and_stale_cas_conflicts(
        self, kit_target: KitTarget, backend: StorageBackend
    ) -> None:
        """2**53 + 1 is the first int a float cannot hold: listing and CAS must keep it."""
        seeded = requires_seed(kit_target, "KV-VER-1")
        await seeded.seed("p:k", b"x", 2**53 + 1, None)
        await seeded.seed("p:m", b"x", 2**53, None)
        listed = [(k, r.version) for k, r in await backend.list_by_prefix("p:")]
        want = [("p:k", 2**53 + 1), ("p:m", 2**53)]
        assert listed == want, f"list_by_prefix('p:') returned versions {listed}, want {want}"
        for stale in (2**53, 2**53 + 2):
            what = f"put_if_version(expected={stale}) on version {2**53 + 1}"
            conflict = await raised(
                VersionConflict, what, backend.put_if_version("p:k", b"s", stale)
            )
            assert conflict.actual == 2**53 + 1, (
                f"{what} raised VersionConflict(actual={conflict.actual!r})"
            )
        got = await stored(backend, "p:k")
        assert got == (b"x", 2**53 + 1, None), f"after two stale CAS get returned {got!r}"
        assert await backend.put_if_version("p:k", b"y", 2**53 + 1) == 2**53 + 2

    @pytest.mark.pmcp_clause("KV-DATA-1")
    async def test_large_records_are_listed_and_cased_byte_exact(
        self, backend: StorageBackend, capabilities: BackendCapabilities
    ) -> None:
        """Several large records in one partition: more than one page of a store that pages by
        bytes (DynamoDB: 1 MB), through CAS and listing, not only put and get."""
        size = min(MIB, capabilities.max_record_bytes or MIB)
        blobs = [random.Random(i).randbytes(size) for i in range(5)]
        for i, blob in enumerate(blobs):
            assert await backend.put_if_version(f"p:{i}", blob[::-1], 0) == 1
            assert await backend.put_if_version(f"p:{i}", blob, 1) == 2
        listed = await backend.list_by_prefix("p:")
        assert [k for k, _ in listed] == [f"p:{i}" for i in range(5)], [k for k, _ in listed]
        for (key, record), blob in zip(listed, blobs, strict=True):
            assert record.version == 2, f"{key}: listed version {record.version}, want 2"
            assert record.data == blob, (
                f"{key}: listed {len(record.data)} bytes, stored {size}; first difference at "
                f"byte {first_difference(record.data, blob)}"
            )
