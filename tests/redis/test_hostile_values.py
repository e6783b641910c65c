"""Values at the edges of what the Redis backend takes, on fakeredis and a real server.

Expiries far beyond what PEXPIREAT accepts (1.8e305 overflowed the milliseconds arithmetic),
integers no float can hold: each is either accepted as the contract says (KV-ARG-3: any finite
number, a past one included) or refused with a ``ValueError`` that shows the value, never a raw
``OverflowError``.
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from reference_backends.redis import RedisBackend

pytestmark = pytest.mark.anyio


@pytest.fixture
def backend(engine_backend: RedisBackend) -> RedisBackend:
    return engine_backend


@pytest.mark.parametrize("expires_at", [1.8e305, 1.7976931348623157e308, 2.0**1000])
async def test_an_expiry_beyond_pexpireat_is_stored_without_a_server_expiry(
    backend: RedisBackend, engine: Redis, engine_namespace: str, expires_at: float
) -> None:
    assert await backend.put("p:k", b"x", expires_at=expires_at) == 1
    assert await backend.put_if_version("p:k", b"y", 1, expires_at=expires_at) == 2
    record = await backend.get("p:k")
    assert record is not None
    assert (record.data, record.version, record.expires_at) == (b"y", 2, expires_at)
    assert [key for key, _ in await backend.list_by_prefix("p:")] == ["p:k"]
    keys = await engine.keys(f"{engine_namespace}:*:r:k")
    assert len(keys) == 1
    assert await engine.pttl(keys[0]) == -1  # no server expiry: cleanup_expired reclaims it


@pytest.mark.parametrize("expires_at", [-1.8e305, -1.7976931348623157e308])
async def test_an_expiry_far_in_the_past_writes_a_dead_record(
    backend: RedisBackend, expires_at: float
) -> None:
    assert await backend.put("p:k", b"x", expires_at=expires_at) == 1
    assert await backend.get("p:k") is None
    assert await backend.list_by_prefix("p:") == []
    assert await backend.cleanup_expired() == 1


@pytest.mark.parametrize(
    "expires_at", [10**400, -(2**1024), 10**5000], ids=["10**400", "-2**1024", "10**5000"]
)
async def test_an_integer_beyond_a_float_is_a_value_error_showing_its_size(
    backend: RedisBackend, expires_at: int
) -> None:
    bits = expires_at.bit_length()
    with pytest.raises(ValueError, match=f"must be finite, not an integer of {bits} bits"):
        await backend.put("p:k", b"x", expires_at=expires_at)
    with pytest.raises(ValueError, match=f"integer of {bits} bits"):
        await backend.put_if_version("p:k", b"x", 0, expires_at=expires_at)
    assert await backend.get("p:k") is None
