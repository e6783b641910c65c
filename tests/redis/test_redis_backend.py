"""The Redis backend against a real redis-server: what the kit cannot see from outside.

Layout, exact versions, round trips per call, server restarts, lost replies, error wrapping
and server-side expiry (damaged records: test_damaged_records.py). The contract itself is
certified by the kit (test_kit_*.py).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest
from mirakuru import TCPExecutor
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis_support import monitored

from conformance.harness import ManualClock
from pmcp_tasks.backend import MAX_VERSION
from pmcp_tasks.errors import BackendError, CapacityExceeded, VersionConflict
from pmcp_tasks.store import GenericTaskStore
from reference_backends.redis import RedisBackend, kit_factory
from reference_backends.redis.kit import RedisKitHooks

pytestmark = pytest.mark.anyio


@pytest.fixture
def namespace() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def backend(
    redis_url: str, namespace: str, clock: ManualClock
) -> AsyncIterator[RedisBackend]:
    made = RedisBackend.from_url(redis_url, namespace=namespace, clock=clock)
    yield made
    await RedisKitHooks(made).drop_namespace()
    await made.aclose()


# -- layout and versions -------------------------------------------------------------------


async def test_layout_puts_every_key_of_a_partition_in_one_hash_tag_slot(
    backend: RedisBackend, raw_redis: Redis, namespace: str, clock: ManualClock
) -> None:
    await backend.put("own%3Aer:t1", b"payload", expires_at=clock() + 100)
    keys = [
        f"{namespace}:{{own%3Aer}}:i".encode(),
        f"{namespace}:{{own%3Aer}}:r:t1".encode(),
        f"{namespace}:{{own%3Aer}}:x".encode(),
    ]
    assert sorted(await raw_redis.keys(f"{namespace}:*")) == keys
    assert {key_slot(k) for k in keys} == {key_slot(b"own%3Aer")}
    stored = await raw_redis.hgetall(f"{namespace}:{{own%3Aer}}:r:t1")
    assert stored[b"data"] == b"payload"
    assert stored[b"version"] == b"1"
    assert float(stored[b"expires_at"]) == clock() + 100
    assert await raw_redis.zrange(f"{namespace}:{{own%3Aer}}:i", 0, -1, withscores=True) == [
        (b"t1", 0.0)
    ]


@pytest.mark.parametrize("start", [2**53 - 1, 2**53, 2**63 - 3])
async def test_versions_are_exact_near_2_53_and_2_63(
    backend: RedisBackend, raw_redis: Redis, namespace: str, start: int
) -> None:
    await RedisKitHooks(backend).seed("p:k", b"seed", start, None)
    assert await backend.put("p:k", b"a") == start + 1
    assert await backend.put_if_version("p:k", b"b", start + 1) == start + 2
    record = await backend.get("p:k")
    assert record is not None
    assert (record.version, record.data) == (start + 2, b"b")
    assert await raw_redis.hget(f"{namespace}:{{p}}:r:k", "version") == str(start + 2).encode()
    with pytest.raises(VersionConflict) as conflict:
        await backend.put_if_version("p:k", b"c", start + 1)
    assert conflict.value.actual == start + 2
    listed = await backend.list_by_prefix("p:")
    assert [(key, rec.version) for key, rec in listed] == [("p:k", start + 2)]


async def test_version_overflow_is_capacity_exceeded_and_writes_nothing(
    backend: RedisBackend,
) -> None:
    await RedisKitHooks(backend).seed("p:k", b"last", MAX_VERSION, None)
    with pytest.raises(CapacityExceeded):
        await backend.put("p:k", b"more")
    with pytest.raises(CapacityExceeded):
        await backend.put_if_version("p:k", b"more", MAX_VERSION)
    record = await backend.get("p:k")
    assert record is not None
    assert (record.data, record.version) == (b"last", MAX_VERSION)


# -- round trips ---------------------------------------------------------------------------


async def _commands_sent(
    redis_url: str, marker_client: Redis, action: Callable[[], Awaitable[Any]]
) -> list[str]:
    """The commands clients sent while ``action`` ran (those of Lua scripts excluded)."""
    return [
        seen["command"].split(" ", 1)[0].upper()
        for seen in await monitored(redis_url, marker_client, action)
        if seen["client_type"] != "lua"
    ]


async def test_each_call_is_one_command_and_a_list_page_is_two(
    backend: RedisBackend, raw_redis: Redis, redis_url: str, clock: ManualClock
) -> None:
    for index in range(300):  # more than one Lua batch (128) in the partition
        expires = clock() + 100 if index % 3 == 0 else None
        await backend.put(f"p:k{index:03d}", b"x", expires_at=expires)
    # Warm up every script and connection, so that no SCRIPT LOAD or handshake is counted.
    await backend.put("warm:up", b"x", expires_at=clock() - 1)  # dead: cleanup runs its script
    assert await backend.cleanup_expired() == 1
    await backend.list_by_prefix("p:", limit=1)
    await backend.delete("p:none")
    await raw_redis.ping()
    clock.advance(200)  # every third record is now dead: pages must walk past them
    await backend.put("p:k000", b"x")  # alive again

    def count(action: Callable[[], Awaitable[Any]]) -> Awaitable[list[str]]:
        return _commands_sent(redis_url, raw_redis, action)

    assert await count(lambda: backend.get("p:k001")) == ["HMGET"]
    assert await count(lambda: backend.put("p:k001", b"y")) == ["EVALSHA"]
    assert await count(lambda: backend.put_if_version("p:k001", b"z", 2)) == ["EVALSHA"]
    assert await count(lambda: backend.delete("p:k001")) == ["EVALSHA"]

    pages: list[list[str]] = []

    async def one_page() -> None:
        page = await backend.list_by_prefix("p:", after="p:k100", limit=100)
        pages.append([key for key, _ in page])

    async def whole_listing() -> None:
        pages.append([key for key, _ in await backend.list_by_prefix("p:")])

    # The first run of list.lua hands back the items whose record keys it must be given, the
    # second one (keys declared) reads the page.
    assert await count(one_page) == ["EVALSHA", "EVALSHA"]
    live_after_100 = [f"p:k{i:03d}" for i in range(101, 300) if i % 3]
    assert pages[0] == live_after_100[:100]  # a full page, ~150 index entries walked
    assert await count(whole_listing) == ["EVALSHA", "EVALSHA"]
    assert pages[1] == ["p:k000"] + [f"p:k{i:03d}" for i in range(2, 300) if i % 3]

    removed: list[int] = []

    async def cleanup() -> None:
        removed.append(await backend.cleanup_expired())

    sent = await count(cleanup)  # SCAN may take several calls on a server shared by tests
    assert [command for command in sent if command != "SCAN"] == ["ZRANGEBYSCORE", "EVALSHA"]
    assert removed == [99]  # every third of 300, less p:k000 (alive again)


# -- connections and errors ----------------------------------------------------------------


async def test_backend_works_again_after_a_server_restart(
    restartable_redis: TCPExecutor, namespace: str
) -> None:
    url = f"redis://{restartable_redis.host}:{restartable_redis.port}/0"
    backend = RedisBackend.from_url(url, namespace=namespace, clock=ManualClock())
    try:
        assert await backend.put("p:k", b"before") == 1
        await anyio.to_thread.run_sync(restartable_redis.stop)
        with pytest.raises(BackendError) as down:
            await backend.get("p:k")
        assert isinstance(down.value.__cause__, RedisConnectionError)
        await anyio.to_thread.run_sync(restartable_redis.start)
        # No persistence: the data and the script cache are gone, the connections are dead.
        assert await backend.get("p:k") is None
        assert await backend.put("p:k", b"after") == 1
        assert await backend.put_if_version("p:k", b"again", 1) == 2
        assert [key for key, _ in await backend.list_by_prefix("p:")] == ["p:k"]
        assert await backend.delete("p:k") is True
    finally:
        await backend.aclose()


async def test_a_burst_beyond_the_pool_size_queues_instead_of_failing(
    redis_url: str, namespace: str
) -> None:
    """200 concurrent store calls through 10 connections: every one completes, none is lost.

    A caller waits for a connection at most ``socket_timeout``; 200 CAS rounds on one key
    through 10 connections can keep one waiting longer than the default 5 s on a loaded
    machine, and this test is about queueing, not speed, so it allows far more.
    """
    backend = RedisBackend.from_url(
        redis_url,
        namespace=namespace,
        clock=ManualClock(),
        max_connections=10,
        socket_timeout=300.0,
    )
    store = GenericTaskStore(backend)
    try:
        task = await store.create("alice")
        async with anyio.create_task_group() as group:
            for i in range(200):
                group.start_soon(store.set_variables, "alice", task.task_id, {f"k{i}": i})
        stored = (await store.get("alice", task.task_id)).variables
        assert stored == {f"k{i}": i for i in range(200)}
    finally:
        await RedisKitHooks(backend).drop_namespace()
        await backend.aclose()


@pytest.mark.parametrize("operation", ["put_if_version", "put"])
async def test_a_retried_write_whose_reply_was_lost_reports_its_own_success(
    redis_url: str, namespace: str, operation: str
) -> None:
    client = Redis.from_url(redis_url, retry=Retry(NoBackoff(), 2))
    original: Callable[..., Awaitable[Any]] = client.parse_response
    lost: list[str] = []

    async def reply_lost_once(conn: Any, command_name: str, **options: Any) -> Any:
        reply = await original(conn, command_name, **options)
        if command_name == "EVALSHA" and not lost:
            lost.append(command_name)  # the server ran the script; the client never hears
            raise RedisTimeoutError("simulated: reply lost after the script ran")
        return reply

    backend = RedisBackend(client, namespace=namespace, clock=ManualClock(), close_client=True)
    try:
        await backend.put("p:k", b"v1")
        lost.clear()
        client.parse_response = reply_lost_once  # type: ignore[method-assign]
        if operation == "put":
            assert await backend.put("p:k", b"v2") == 2
        else:
            assert await backend.put_if_version("p:k", b"v2", 1) == 2
        assert lost == ["EVALSHA"]  # the script really ran twice
        record = await backend.get("p:k")
        assert record is not None
        assert (record.data, record.version) == (b"v2", 2)
        with pytest.raises(VersionConflict):  # another call with the same expectation loses
            await backend.put_if_version("p:k", b"v3", 1)
    finally:
        await RedisKitHooks(backend).drop_namespace()
        await backend.aclose()


async def test_redis_errors_are_wrapped_with_their_cause(
    backend: RedisBackend, raw_redis: Redis, namespace: str
) -> None:
    await raw_redis.set(f"{namespace}:{{p}}:r:str", b"not a hash")
    with pytest.raises(BackendError, match="'p:str'") as wrong_type:
        await backend.get("p:str")
    assert isinstance(wrong_type.value.__cause__, ResponseError)

    closed_port = RedisBackend.from_url(
        "redis://127.0.0.1:1/0", namespace=namespace, retries=1, retry_backoff_base=0.001
    )
    with pytest.raises(BackendError) as refused:
        await closed_port.list_by_prefix("p:")
    assert isinstance(refused.value.__cause__, RedisConnectionError)
    await closed_port.aclose()


async def test_any_client_failure_is_wrapped(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def torn_down(*args: Any, **kwargs: Any) -> Any:
        raise AttributeError("'NoneType' object has no attribute 'writelines'")

    monkeypatch.setattr(Redis, "hmget", torn_down)
    with pytest.raises(BackendError, match="'p:k'") as failed:
        await backend.get("p:k")
    assert isinstance(failed.value.__cause__, AttributeError)


def test_arguments_that_would_break_the_layout_are_refused(redis_url: str) -> None:
    for bad in ["", "ns{x}", "ns*", "a b", "ns?"]:
        with pytest.raises(ValueError, match="namespace"):
            RedisBackend.from_url(redis_url, namespace=bad)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisBackend(Redis.from_url(redis_url, decode_responses=True))


# -- expiry ---------------------------------------------------------------------------------


async def test_server_expiry_comes_expiry_grace_after_the_injected_expiry(
    backend: RedisBackend, raw_redis: Redis, namespace: str, clock: ManualClock
) -> None:
    record_key = f"{namespace}:{{p}}:r:k"
    expires_at = clock() + 10
    await backend.put("p:k", b"x", expires_at=expires_at)
    reclaim_ms = math.ceil((expires_at + 60) * 1000)
    if int(str((await raw_redis.info("server"))["redis_version"]).split(".")[0]) >= 7:
        assert await raw_redis.pexpiretime(record_key) == reclaim_ms
    else:  # no PEXPIRETIME before Redis 7: bracket it with the server's clock and PTTL
        seconds, micros = await raw_redis.time()
        left = await raw_redis.pttl(record_key)
        seconds_after, micros_after = await raw_redis.time()
        earliest = seconds * 1000 + micros // 1000 + left
        assert earliest <= reclaim_ms <= seconds_after * 1000 + micros_after // 1000 + left + 1
    await backend.put("p:k", b"x")  # no expiry any more: Redis must not reclaim it either
    assert await raw_redis.pttl(record_key) == -1
    assert await raw_redis.zscore(f"{namespace}:{{p}}:x", "k") == math.inf  # never


async def test_an_injected_clock_behind_real_time_keeps_records_alive(
    redis_url: str, namespace: str
) -> None:
    behind = ManualClock(time.time() - 30)  # the injected clock is 30 s behind the server
    backend = RedisBackend.from_url(redis_url, namespace=namespace, clock=behind)
    try:
        await backend.put("p:k", b"x", expires_at=behind() + 1)  # real time is 29 s past that
        record = await backend.get("p:k")
        assert record is not None
        assert record.data == b"x"
    finally:
        await RedisKitHooks(backend).drop_namespace()
        await backend.aclose()


async def test_a_hash_reclaimed_by_redis_leaves_listings_and_is_counted_by_cleanup(
    backend: RedisBackend, raw_redis: Redis, namespace: str, clock: ManualClock
) -> None:
    await backend.put("p:live", b"x")
    await backend.put("p:old", b"x", expires_at=1.0)  # expired 1970: Redis drops it at once
    assert not await raw_redis.exists(f"{namespace}:{{p}}:r:old")
    assert await backend.get("p:old") is None
    assert [key for key, _ in await backend.list_by_prefix("p:")] == ["p:live"]
    assert await backend.cleanup_expired() == 1
    assert await raw_redis.zrange(f"{namespace}:{{p}}:i", 0, -1) == [b"live"]
    assert await raw_redis.zrange(f"{namespace}:{{p}}:x", 0, -1) == [b"live"]
    assert await raw_redis.exists(f"{namespace}:{{p}}:d") == 0  # its parked entry went too
    assert await backend.cleanup_expired() == 0


async def test_no_expiry_grace_means_no_server_expiry(
    redis_url: str, raw_redis: Redis, namespace: str
) -> None:
    clock = ManualClock()
    backend = RedisBackend.from_url(redis_url, namespace=namespace, clock=clock, expiry_grace=None)
    try:
        await backend.put("p:k", b"x", expires_at=1.0)
        assert await raw_redis.pttl(f"{namespace}:{{p}}:r:k") == -1
        assert await backend.get("p:k") is None
        assert await backend.cleanup_expired() == 1
        assert await raw_redis.keys(f"{namespace}:*") == []
    finally:
        await backend.aclose()


# -- kit hooks and factory -----------------------------------------------------------------


async def test_drop_namespace_leaves_no_keys_and_spares_other_namespaces(
    redis_url: str, raw_redis: Redis, namespace: str
) -> None:
    clock = ManualClock()
    mine = RedisBackend.from_url(redis_url, namespace=namespace, clock=clock)
    other = RedisBackend.from_url(redis_url, namespace=namespace + "-other", clock=clock)
    try:
        for partition in ("a", "b", "c%2F"):
            await mine.put(f"{partition}:k1", b"x", expires_at=clock() + 50)
            await mine.put(f"{partition}:k2", b"x")
        await other.put("a:k1", b"kept")
        await RedisKitHooks(mine).drop_namespace()
        assert await raw_redis.keys(f"{namespace}:*") == []
        assert await other.get("a:k1") is not None
    finally:
        await RedisKitHooks(other).drop_namespace()
        await mine.aclose()
        await other.aclose()
    assert await raw_redis.keys(f"{namespace}*") == []


async def test_kit_factory_instances_on_one_namespace_share_data(namespace: str) -> None:
    clock = ManualClock()
    first = (await kit_factory(namespace=namespace, clock=clock)).backend
    second = (await kit_factory(namespace=namespace, clock=clock)).backend
    elsewhere = (await kit_factory(namespace=namespace + "-2", clock=clock)).backend
    try:
        assert first.capabilities.shared
        await first.put("p:k", b"x")
        assert await second.put_if_version("p:k", b"y", 1) == 2
        assert await elsewhere.get("p:k") is None
    finally:
        await RedisKitHooks(first).drop_namespace()
        for made in (first, second, elsewhere):
            await made.aclose()


async def test_kit_factory_refuses_unknown_options() -> None:
    with pytest.raises(ValueError, match="redis_ulr"):
        await kit_factory(namespace="n", clock=time.time, redis_ulr="redis://x")
