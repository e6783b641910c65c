"""Real server fixtures for the Redis backend's tests, on the engine ``$PMCP_REDIS_ENGINE`` names.

Servers run on free loopback ports with persistence off (``save ""``, no AOF), so a restart
starts empty (``tests/servers.py: redis_server``). Without the engine the tests that need one
fail, saying how to install it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import fakeredis
import pytest
from mirakuru import TCPExecutor
from redis.asyncio import Redis
from servers import redis_cluster, redis_server, redis_server_url

from conformance.harness import ManualClock
from reference_backends.redis import RedisBackend


@pytest.fixture(scope="session")
def redis_proc_real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TCPExecutor]:
    """The shared server of this test session."""
    server = redis_server(tmp_path_factory.mktemp("redis"))
    with server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_proc_real: TCPExecutor) -> str:
    return redis_server_url(redis_proc_real)


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[TCPExecutor]:
    """A server of its own that a test stops and starts, so no other test sees that."""
    server = redis_server(tmp_path / "restartable")
    with server:
        yield server


@pytest.fixture(scope="session")
def password_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a server whose password is ``right-password`` (not in the URL)."""
    server = redis_server(
        tmp_path_factory.mktemp("redis-password"), "--requirepass", "right-password"
    )
    with server:
        yield redis_server_url(server)


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client for looking at (and tampering with) what the backend stored."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["fakeredis", "redis-server"])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[Redis]:
    """A raw client on each engine a test runs on: fakeredis, then the real server."""
    if request.param == "fakeredis":
        client: Redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(version=(7,)))
    else:
        client = Redis.from_url(request.getfixturevalue("redis_url"))
    yield client
    await client.aclose()


@pytest.fixture
async def engine_namespace(engine: Redis) -> AsyncIterator[str]:
    """A fresh namespace on ``engine``, whose keys are removed after the test."""
    namespace = f"t-{uuid.uuid4().hex[:12]}"
    yield namespace
    left = [key async for key in engine.scan_iter(match=f"{namespace}:*")]
    if left:
        await engine.delete(*left)


@pytest.fixture
def engine_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def engine_backend(
    engine: Redis, engine_namespace: str, engine_clock: ManualClock
) -> AsyncIterator[RedisBackend]:
    """A backend on ``engine`` with its default options and the kit's clock."""
    made = RedisBackend(engine, namespace=engine_namespace, clock=engine_clock, allow_eviction=True)
    yield made
    await made.aclose()


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 3-primary Redis Cluster on loopback; the URL of one node (the client finds the rest)."""
    with redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as url:
        yield url
