"""Real server fixtures for the Redis backend's tests, on the engine ``$PMCP_REDIS_ENGINE`` names.

Servers run on free loopback ports with persistence off (``save ""``, no AOF), so a restart
starts empty (``tests/servers.py: redis_server``). Without the engine the tests that need one
are skipped with the reason, except under CI (``CI`` set), where a missing server must fail
the run rather than vanish from it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import fakeredis
import port_for
import pytest
import redis
from mirakuru import TCPExecutor
from redis.asyncio import Redis
from redis.cluster import REDIS_CLUSTER_HASH_SLOTS
from servers import redis_server

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
    return f"redis://{redis_proc_real.host}:{redis_proc_real.port}/0"


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
        yield f"redis://{server.host}:{server.port}/0"


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


CLUSTER_NODES = 3


def _form_cluster(ports: list[int]) -> None:
    """Split the slots evenly and introduce the nodes, as ``redis-cli --cluster create`` does
    (done with CLUSTER ADDSLOTS and MEET so that engines that ship no redis-cli work too)."""
    share = -(-REDIS_CLUSTER_HASH_SLOTS // len(ports))
    for index, port in enumerate(ports):
        with redis.Redis(port=port) as client:
            first = index * share
            last = min(first + share, REDIS_CLUSTER_HASH_SLOTS)
            client.execute_command("CLUSTER ADDSLOTS", *range(first, last))
            for other in ports[:index]:
                client.execute_command("CLUSTER MEET", "127.0.0.1", other)
    deadline = time.monotonic() + 60
    for port in ports:  # every node must agree that all slots are served
        with redis.Redis(port=port) as client:
            while client.cluster("INFO").get("cluster_state") != "ok":
                if time.monotonic() > deadline:
                    pytest.fail(f"redis cluster node {port} never reached cluster_state:ok")
                time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 3-primary Redis Cluster on loopback; the URL of one node (the client finds the rest).

    Ports come from 20000-40000 so that each node's cluster bus port (port + 10000) is valid.
    """
    base = tmp_path_factory.mktemp("redis-cluster")
    ports: list[int] = []
    while len(ports) < CLUSTER_NODES:
        port = port_for.get_port((20000, 40000), exclude_ports=ports)
        if port is not None and port_for.is_available(port + 10000):
            ports.append(port)
    cluster_options = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
    nodes = [redis_server(base / str(port), *cluster_options, port=port) for port in ports]
    try:
        for node in nodes:
            node.start()
        _form_cluster(ports)
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for node in nodes:
            node.stop()
