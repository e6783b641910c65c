"""A record the Redis backend cannot decode is isolated, on fakeredis and a real server.

Damage is planted with the raw client, as a bug in another writer, a botched migration or a
hand edit would leave it: ``get`` of that key raises ``BackendError`` naming it, listings skip
it with a warning on the ``pmcp_tasks`` logger and return the others (pages stay full), and
``put``, ``put_if_version`` and ``delete`` overwrite or remove it.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from redis.asyncio import Redis

from conformance.harness import DAMAGE_KINDS, ManualClock
from pmcp_tasks.errors import BackendError, RecordNotFound
from reference_backends.redis import RedisBackend
from reference_backends.redis.kit import RedisKitHooks

pytestmark = pytest.mark.anyio

# kind -> the record hash's fields (None: a string instead of a hash), what the error names
RECORD_DAMAGE: dict[str, tuple[dict[str, bytes] | None, str]] = {
    "version-abc": ({"data": b"x", "version": b"abc", "expires_at": b""}, "'version'"),
    "version-2**63": (
        {"data": b"x", "version": b"9223372036854775808", "expires_at": b""},
        "'version'",
    ),
    "version-missing": ({"data": b"x", "expires_at": b""}, "'version'"),
    "expiry-inf": ({"data": b"x", "version": b"3", "expires_at": b"inf"}, "'expires_at'"),
    "expiry-text": ({"data": b"x", "version": b"3", "expires_at": b"soon"}, "'expires_at'"),
    "expiry-missing": ({"data": b"x", "version": b"3"}, "'expires_at'"),
    "data-missing": ({"version": b"3", "expires_at": b""}, "'data'"),
    "wrong-type": (None, "not a hash|WRONGTYPE"),
}


async def _plant(engine: Redis, namespace: str, item: str, kind: str) -> None:
    fields, _ = RECORD_DAMAGE[kind]
    record = f"{namespace}:{{p}}:r:{item}"
    if fields is None:
        await engine.set(record, b"not a hash")
    else:
        await engine.hset(record, mapping=fields)  # type: ignore[arg-type]
    await engine.zadd(f"{namespace}:{{p}}:i", {item: 0})


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("pmcp_tasks") and record.levelno == logging.WARNING
    ]


async def _keys(engine_backend: RedisBackend, **page: Any) -> list[str]:
    return [key for key, _ in await engine_backend.list_by_prefix("p:", **page)]


@pytest.mark.parametrize("kind", RECORD_DAMAGE)
async def test_a_damaged_record_fails_its_get_and_is_skipped_by_listings(
    engine_backend: RedisBackend,
    engine: Redis,
    engine_namespace: str,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    for item in ("a", "c", "d"):
        await engine_backend.put(f"p:{item}", item.encode())
    await _plant(engine, engine_namespace, "b", kind)
    with pytest.raises(BackendError, match=f"'p:b'.*({RECORD_DAMAGE[kind][1]})"):
        await engine_backend.get("p:b")
    with caplog.at_level(logging.WARNING, logger="pmcp_tasks"):
        assert await _keys(engine_backend) == ["p:a", "p:c", "p:d"]
        assert await _keys(engine_backend, limit=2) == ["p:a", "p:c"]  # full: the damage is no gap
        assert await _keys(engine_backend, after="p:a", limit=1) == ["p:c"]
    warned = _warnings(caplog)
    assert len(warned) == 3, warned
    assert all("'p:b'" in message for message in warned), warned
    assert await engine_backend.get("p:c") is not None  # neighbours untouched


@pytest.mark.parametrize("kind", RECORD_DAMAGE)
async def test_writes_and_deletes_overwrite_a_damaged_record(
    engine_backend: RedisBackend,
    engine: Redis,
    engine_namespace: str,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    await _plant(engine, engine_namespace, "put", kind)
    await _plant(engine, engine_namespace, "cas", kind)
    await _plant(engine, engine_namespace, "missing", kind)
    await _plant(engine, engine_namespace, "gone", kind)
    with caplog.at_level(logging.WARNING, logger="pmcp_tasks"):
        assert await engine_backend.put("p:put", b"new") == 1  # damaged counts as absent
        with pytest.raises(RecordNotFound):
            await engine_backend.put_if_version("p:missing", b"new", 3)
        assert await engine_backend.put_if_version("p:cas", b"new", 0) == 1
        assert await engine_backend.delete("p:gone") is False  # nothing live was removed
    for key in ("p:put", "p:cas"):
        record = await engine_backend.get(key)
        assert record is not None
        assert (record.data, record.version, record.expires_at) == (b"new", 1, None)
    assert await engine_backend.get("p:gone") is None
    assert not await engine.exists(f"{engine_namespace}:{{p}}:r:gone")
    assert await _keys(engine_backend) == ["p:cas", "p:put"]  # p:missing is still damaged: skipped
    warned = _warnings(caplog)
    for key in ("p:put", "p:cas", "p:gone", "p:missing"):
        assert any(f"'{key}'" in message for message in warned), (key, warned)


@pytest.mark.parametrize("member", [b"\xff\xfe", b"b\xff", b"b:c", b"b c", b""])
async def test_an_index_member_that_is_no_item_is_skipped(
    engine_backend: RedisBackend,
    engine: Redis,
    engine_namespace: str,
    caplog: pytest.LogCaptureFixture,
    member: bytes,
) -> None:
    for item in ("a", "c"):
        await engine_backend.put(f"p:{item}", item.encode())
    await engine.zadd(f"{engine_namespace}:{{p}}:i", {member: 0})
    await engine.hset(f"{engine_namespace}:{{p}}:r:".encode() + member, "data", b"x")
    with caplog.at_level(logging.WARNING, logger="pmcp_tasks"):
        assert await _keys(engine_backend) == ["p:a", "p:c"]
        assert await _keys(engine_backend, limit=1, after="p:a") == ["p:c"]
    warned = _warnings(caplog)
    assert len(warned) == (2 if b"a" < member < b"c" else 1), warned
    assert all(repr(member) in message for message in warned), warned


async def test_a_partition_index_of_the_wrong_type_is_replaced_by_the_next_write(
    engine_backend: RedisBackend,
    engine: Redis,
    engine_namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await engine_backend.put("p:a", b"a")
    index = f"{engine_namespace}:{{p}}:i"
    await engine.delete(index)
    await engine.set(index, b"not an index")
    with caplog.at_level(logging.WARNING, logger="pmcp_tasks"):
        assert await _keys(engine_backend) == []
        assert (await engine_backend.get("p:a")) is not None  # the record itself is fine
        assert await engine_backend.put("p:b", b"b") == 1
        assert await _keys(engine_backend) == ["p:b"]
        assert await engine_backend.put("p:a", b"a") == 2
    assert await _keys(engine_backend) == ["p:a", "p:b"]
    warned = _warnings(caplog)
    assert len(warned) == 2, warned
    assert index in warned[0]
    assert "not a sorted set" in warned[0]
    assert f"replaced '{index}'" in warned[1]
    assert await engine.type(index) == b"zset"


async def test_an_expiry_index_of_the_wrong_type_is_replaced_and_listings_still_work(
    engine_backend: RedisBackend,
    engine: Redis,
    engine_namespace: str,
    engine_clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await engine_backend.put("p:a", b"a")
    await engine_backend.put("p:b", b"b", expires_at=engine_clock() + 10)
    expiry = f"{engine_namespace}:{{p}}:x"
    await engine.delete(expiry)
    await engine.set(expiry, b"not an index")
    assert await _keys(engine_backend) == ["p:a", "p:b"]
    engine_clock.advance(20)
    assert await _keys(engine_backend) == ["p:a"]  # p:b's hash says it is dead
    with caplog.at_level(logging.WARNING, logger="pmcp_tasks"):
        assert await engine_backend.put("p:c", b"c", expires_at=engine_clock() + 10) == 1
    assert any(f"replaced '{expiry}'" in message for message in _warnings(caplog))
    engine_clock.advance(20)
    assert await engine_backend.cleanup_expired() == 1  # p:c; p:b's expiry entry was in the damage
    assert await _keys(engine_backend) == ["p:a"]


UNTYPED = "expiry-of-another-type"
"""The one kind Redis cannot hold: every field of a hash is a string, so no field has a type."""


@pytest.mark.parametrize("kind", [kind for kind in DAMAGE_KINDS if kind != UNTYPED])
async def test_the_kit_hook_plants_every_damage_kind_the_backend_then_isolates(
    engine_backend: RedisBackend, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    await engine_backend.put("p:a", b"a")
    await engine_backend.put("p:c", b"c")
    assert await RedisKitHooks(engine_backend).plant_damaged("p:b", kind) is True
    if kind != "bad-index-member":  # that one is a member naming no key: there is no get
        with pytest.raises(BackendError, match="'p:b'"):
            await engine_backend.get("p:b")
    with caplog.at_level(logging.WARNING, logger="pmcp_tasks"):
        assert await _keys(engine_backend) == ["p:a", "p:c"]
    assert len(_warnings(caplog)) == 1
    assert await RedisKitHooks(engine_backend).plant_damaged("p:b", "no-such-kind") is False
    assert await RedisKitHooks(engine_backend).plant_damaged("p:b", UNTYPED) is False
