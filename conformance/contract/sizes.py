"""Sizes (KV-SIZE-*): over the declared limit is ``CapacityExceeded`` and nothing is written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import pytest

from conformance.contract.base import requires_size_limit, stored
from pmcp_tasks.backend import BackendCapabilities, StorageBackend
from pmcp_tasks.errors import CapacityExceeded


def payload(size: int) -> bytes:
    """``size`` bytes that are not all alike, so truncation or re-encoding shows."""
    return bytes((i * 7 + 3) % 256 for i in range(size))


def text_payload(size: int) -> bytes:
    """``size`` bytes of valid UTF-8, mostly two-byte characters: half as many characters as
    bytes, so a backend that measures text in characters lets it past the limit."""
    return ("\u00e9" * (size // 2) + "a" * (size % 2)).encode()


Write = Callable[[str, bytes, int], Awaitable[int]]
"""``put`` or ``put_if_version`` as ``write(key, data, expected_version)``."""


async def rejected_over_the_limit(
    backend: StorageBackend, capabilities: BackendCapabilities, write: Write
) -> None:
    """One byte over the limit, ``write`` raises and writes nothing: neither a new key nor over
    an existing record."""
    limit = requires_size_limit(capabilities, "KV-SIZE-1")
    with pytest.raises(CapacityExceeded):
        await write("p:new", payload(limit + 1), 0)
    assert await backend.get("p:new") is None, "a rejected record was (partly) written"
    await backend.put("p:k", b"small")
    with pytest.raises(CapacityExceeded):
        await write("p:k", payload(limit + 1), 1)
    assert await stored(backend, "p:k") == (b"small", 1, None)


class SizesContract:
    """Record size limits."""

    pytestmark = pytest.mark.anyio

    @pytest.mark.pmcp_clause("KV-SIZE-1", "KV-CAP-1")
    async def test_put_over_the_limit_raises_and_writes_nothing(
        self, backend: StorageBackend, capabilities: BackendCapabilities
    ) -> None:
        await rejected_over_the_limit(
            backend, capabilities, lambda key, data, _version: backend.put(key, data)
        )

    @pytest.mark.pmcp_clause("KV-SIZE-1", "KV-CAP-1")
    async def test_cas_over_the_limit_raises_and_writes_nothing(
        self, backend: StorageBackend, capabilities: BackendCapabilities
    ) -> None:
        await rejected_over_the_limit(backend, capabilities, backend.put_if_version)

    @pytest.mark.pmcp_clause("KV-SIZE-1")
    async def test_far_over_the_limit_raises(
        self, backend: StorageBackend, capabilities: BackendCapabilities
    ) -> None:
        limit = requires_size_limit(capabilities, "KV-SIZE-1")
        with pytest.raises(CapacityExceeded):
            await backend.put("p:k", payload(2 * limit + 1024))
        assert await backend.get("p:k") is None

    @pytest.mark.pmcp_clause("KV-SIZE-2", "KV-CAP-1")
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

    @pytest.mark.pmcp_clause("KV-SIZE-1", "KV-SIZE-2", "KV-CAP-1")
    @pytest.mark.parametrize("make", [payload, text_payload], ids=["binary", "utf8-multibyte"])
    async def test_sizes_around_the_limit(
        self,
        backend: StorageBackend,
        capabilities: BackendCapabilities,
        make: Callable[[int], bytes],
    ) -> None:
        """limit - 1 and limit are accepted by put and CAS; limit + 1 is not, for either."""
        limit = requires_size_limit(capabilities, "KV-SIZE-1")
        for size in (limit - 1, limit):
            data = make(size)
            assert len(data) == size
            key = f"p:ok{size}"
            try:
                version = await backend.put(key, data)
                cas = await backend.put_if_version(key, data[::-1], version)
            except CapacityExceeded as exc:
                raise AssertionError(
                    f"KV-SIZE-2: a record of {size} bytes (limit {limit}) raised {exc!r}"
                ) from exc
            got = await stored(backend, key)
            assert got == (data[::-1], cas, None), f"{size} bytes did not round-trip: {got!r}"
        over = make(limit + 1)
        for name, call in (
            ("put", partial(backend.put, "p:over", over)),
            ("put_if_version(..., 0)", partial(backend.put_if_version, "p:over", over, 0)),
            ("put_if_version(..., 1)", partial(backend.put_if_version, f"p:ok{limit}", over, 1)),
        ):
            try:
                result = await call()
            except CapacityExceeded:
                continue
            raise AssertionError(
                f"KV-SIZE-1: {name} of {limit + 1} bytes (limit {limit}) returned {result!r} "
                "instead of raising CapacityExceeded"
            )
        assert await backend.get("p:over") is None, "a rejected record was written"
