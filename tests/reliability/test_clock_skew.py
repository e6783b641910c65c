"""Hosts whose clocks disagree share one store (docs/reliability.md, "Clock skew").

Each *host* is a backend and a store on one clock, shifted from the storage server's: on a
real redis-server the server's clock is ``TIME`` (the real time) and a host's backend takes
its shifted clock, as a skewed machine's would; on memory the server is the process, whose
clock is the backend's, and only the store runs shifted. The four measured failures of a
skewed host (a store ahead deleting live tasks in ``cleanup_expired``, a worker behind
failing its own healthy lease, dead creates of a host ahead locking an owner out, a store
ahead taking live tasks' slots) each run within the tolerance, where nothing may be lost,
and at +-1 h or 2 h, where the skewed host is refused with a message naming both clocks.
With the check off (the store on its own clock, as before) every scenario fails on Redis, and
on memory all but the clean-up and the slot claim within the tolerance (there the backend, on
the server's clock, already decided right).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest
from reliability_support import opened
from servers import installed_backends

from conformance.harness import BackendFactory, ManualClock, fresh_namespace
from pmcp_tasks import (
    ClockSkewExceeded,
    GenericTaskStore,
    StorageBackend,
    StoreConfig,
    TaskLimitExceeded,
    TaskStatus,
)
from pmcp_tasks.cap import slot_prefix
from pmcp_tasks.keys import task_key
from pmcp_tasks.timebase import ServerClock
from reference_backends.memory import InMemoryBackend, MemoryStore

pytestmark = pytest.mark.anyio

OWNER = "alice"
CONFIG = StoreConfig(max_tasks_per_owner=3, dead_task_grace=1, min_ttl=1)
WITHIN = 20.0
"""A skew inside the default tolerance (``StoreConfig.max_clock_skew``, 30 s), and larger
than the ttl, the lease and the grace used here, so that a store on its own clock fails."""
HOUR = 3600.0
TOLERANCE = 30.0
assert CONFIG.max_clock_skew == TOLERANCE  # the default


@dataclass
class Host:
    backend: StorageBackend
    store: GenericTaskStore


@dataclass
class World:
    """The storage server and a way to open hosts on it and to let its time pass."""

    host: Callable[[float, StoreConfig], Awaitable[Host]]
    advance: Callable[[float], Awaitable[None]]
    now: Callable[[], float]


@pytest.fixture(params=["memory", *(["redis-server"] if "redis" in installed_backends() else [])])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        if request.param == "memory":
            yield _memory_world()
        else:
            yield await _redis_world(stack, request.getfixturevalue("real_redis_url"))


def _memory_world() -> World:
    server_clock = ManualClock(start=1_800_000_000.0)
    shared, namespace = MemoryStore(), fresh_namespace("skew")

    async def host(skew: float, config: StoreConfig = CONFIG) -> Host:
        backend = InMemoryBackend(namespace=namespace, clock=server_clock, store=shared)
        return Host(backend, _store(backend, config, lambda: server_clock() + skew))

    async def advance(seconds: float) -> None:
        server_clock.advance(seconds)

    return World(host, advance, server_clock)


async def _redis_world(stack: AsyncExitStack, url: str) -> World:
    from reference_backends.redis import RedisBackend
    from reference_backends.redis.kit import RedisKitHooks

    namespace = fresh_namespace("skew")

    async def host(skew: float, config: StoreConfig = CONFIG) -> Host:
        def clock() -> float:
            return time.time() + skew

        backend = RedisBackend.from_url(url, namespace=namespace, clock=clock)
        stack.push_async_callback(backend.aclose)
        return Host(backend, _store(backend, config, clock))

    async def advance(seconds: float) -> None:
        """Real time, since the server's clock is: lets the time pass, bounds nothing."""
        await asyncio.sleep(seconds)

    cleaner = RedisBackend.from_url(url, namespace=namespace)
    stack.push_async_callback(cleaner.aclose)
    stack.push_async_callback(RedisKitHooks(cleaner).drop_namespace)
    return World(host, advance, time.time)


def _store(
    backend: StorageBackend, config: StoreConfig, clock: Callable[[], float]
) -> GenericTaskStore:
    """A shifted clock is not ``time.time``, so the check is asked for explicitly."""
    return GenericTaskStore(backend, config, clock, check_skew=True)


async def _refused(call: Awaitable[object], skew: float) -> None:
    with pytest.raises(ClockSkewExceeded) as refused:
        await call
    exc, message = refused.value, refused.value.message
    measured = exc.local - exc.server
    assert abs(measured - skew) < 10, message  # off by the round trip's half at most
    assert f"{measured:+.3f} s apart" in message, message
    assert "this process's clock reads" in message, message
    assert "the storage server's reads" in message, message
    assert "max_clock_skew (30 s)" in message, message
    assert refused.value.code == -32603


@pytest.mark.parametrize("skew", [WITHIN, HOUR])
async def test_a_store_ahead_cleaning_up_deletes_no_live_task(world: World, skew: float) -> None:
    uncapped = StoreConfig(max_tasks_per_owner=None, min_ttl=1)
    right, ahead = await world.host(0, uncapped), await world.host(skew, uncapped)
    made = {(await right.store.create(OWNER, ttl=10)).task_id for _ in range(50)}
    if abs(skew) > TOLERANCE:
        await _refused(ahead.store.cleanup_expired(), skew)
    else:
        await ahead.store.cleanup_expired()
    for task_id in made:  # 0 of 50 lost
        assert (await right.store.get(OWNER, task_id)).status is TaskStatus.WORKING


@pytest.mark.parametrize("skew", [-WITHIN, -HOUR])
async def test_a_worker_behind_keeps_its_healthy_lease(world: World, skew: float) -> None:
    """The worker's host creates the task, leased to itself, and renews the lease."""
    right, behind = await world.host(0, CONFIG), await world.host(skew, CONFIG)
    if abs(skew) > TOLERANCE:
        await _refused(behind.store.create(OWNER, worker="w", lease=5), skew)
        assert (await right.store.list(OWNER))[0] == []
        return
    task = await behind.store.create(OWNER, worker="w", lease=5)
    await behind.store.renew_lease(OWNER, task.task_id, "w", 5)
    checked = await right.store.get_checking_lease(OWNER, task.task_id)
    assert checked.status is TaskStatus.WORKING, checked.status_message


@pytest.mark.parametrize("skew", [WITHIN, 2 * HOUR])
async def test_dead_creates_of_a_host_ahead_lock_nobody_out(world: World, skew: float) -> None:
    """Creates that wrote their slot and died before their task: the owner has its slots
    back once ``dead_task_grace`` has passed on the server's clock."""
    right, ahead = await world.host(0, CONFIG), await world.host(skew, CONFIG)
    if abs(skew) > TOLERANCE:
        await _refused(ahead.store.create(OWNER, ttl=5), skew)
        assert await right.backend.list_by_prefix(slot_prefix(OWNER)) == []  # nothing written
    else:
        for _ in range(3):
            task = await ahead.store.create(OWNER, ttl=5)
            assert await right.backend.delete(task_key(OWNER, task.task_id))  # "died"
        await world.advance(CONFIG.dead_task_grace + 0.1)
    for _ in range(3):  # 0 owners locked out
        await right.store.create(OWNER, ttl=5)
    with pytest.raises(TaskLimitExceeded):
        await right.store.create(OWNER, ttl=5)


@pytest.mark.parametrize("skew", [WITHIN, HOUR])
async def test_a_store_ahead_takes_no_live_tasks_slot(world: World, skew: float) -> None:
    """Ahead by more than ttl + dead_task_grace, the live tasks' slots look expired to it."""
    right, ahead = await world.host(0, CONFIG), await world.host(skew, CONFIG)
    for _ in range(3):
        await right.store.create(OWNER, ttl=5)
    if abs(skew) > TOLERANCE:
        await _refused(ahead.store.create(OWNER, ttl=5), skew)
    else:
        with pytest.raises(TaskLimitExceeded):
            await ahead.store.create(OWNER, ttl=5)
    listed, _ = await right.store.list(OWNER)
    assert len(listed) == 3  # never more than the cap


async def test_a_fixed_clock_is_served_again(world: World) -> None:
    """A refused store measures on every call, so it recovers once its clock is fixed."""
    skew = [HOUR]
    base = await world.host(0, CONFIG)
    store = GenericTaskStore(base.backend, CONFIG, lambda: world.now() + skew[0], check_skew=True)
    await _refused(store.create(OWNER), HOUR)
    skew[0] = 0.0
    assert (await store.create(OWNER)).status is TaskStatus.WORKING


async def test_an_injected_clock_is_not_checked_unless_asked(world: World) -> None:
    """A test's clock moved by hours (the kit's time travel) keeps working by default."""
    base = await world.host(0, CONFIG)
    store = GenericTaskStore(base.backend, CONFIG, lambda: time.time() + 10 * HOUR)
    assert (await store.create(OWNER)).status is TaskStatus.WORKING


async def test_no_tolerance_means_no_check(world: World) -> None:
    """``max_clock_skew=None``: the store runs on its own clock, whatever the server says."""
    base = await world.host(0, CONFIG)
    config = StoreConfig(max_tasks_per_owner=3, max_clock_skew=None)
    store = GenericTaskStore(base.backend, config, lambda: world.now() + HOUR, check_skew=True)
    assert (await store.create(OWNER)).status is TaskStatus.WORKING


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "30", True])
def test_a_bad_tolerance_is_refused_when_configured(bad: object) -> None:
    with pytest.raises(ValueError, match="max_clock_skew must be a number of seconds"):
        StoreConfig(max_clock_skew=bad)  # type: ignore[arg-type]


async def test_a_store_within_the_tolerance_runs_on_the_servers_clock(world: World) -> None:
    """Its task is stamped with the server's time, not with its own clock 20 s ahead (what
    is left is the measurement's error: half a round trip)."""
    ahead = await world.host(WITHIN, CONFIG)
    before = world.now()
    task = await ahead.store.create(OWNER)
    assert abs(task.created_at_ms / 1000 - before) < WITHIN / 2


def test_check_skew_takes_a_bool_or_none() -> None:
    with pytest.raises(ValueError, match="check_skew must be True, False or None, not 'yes'"):
        GenericTaskStore(InMemoryBackend(), check_skew="yes")  # type: ignore[arg-type]


async def test_every_reference_backend_tells_the_servers_time(factory: BackendFactory) -> None:
    """On this host every server's clock is this host's: the reading lies within the call,
    give or take DynamoDB's half-second (its ``Date`` header has whole seconds)."""
    async with opened(factory, time.time, "skew") as backend:
        assert isinstance(backend, ServerClock)
        before = time.time()
        reading = await backend.server_time()
        after = time.time()
        assert before - 0.5 <= reading <= after + 0.5
