"""Real redis-server fixtures (pytest-redis) for the Redis backend's tests.

Servers run on free loopback ports (pytest-redis picks one when no port is configured) with
persistence off (``save ""``, no AOF), so a restart starts empty. Without redis-server the
tests that need one are skipped with the reason, except under CI (``CI`` set), where a missing
server must fail the run rather than vanish from it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import port_for
import pytest
import redis
from mirakuru import TCPExecutor
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from redis.asyncio import Redis
from redis.cluster import REDIS_CLUSTER_HASH_SLOTS
from servers import redis_server_binary, require_redis_server

_NO_PERSISTENCE = '""'
# The engine chosen by $PMCP_REDIS_ENGINE (tests/servers.py); when it is missing the fixtures
# below skip or fail through require_redis_server before pytest-redis would look for it.
_BINARY = redis_server_binary() or "redis-server"

redis_server_proc = factories.redis_proc(executable=_BINARY, save=_NO_PERSISTENCE)
"""The shared server of this test session."""

restartable_redis_proc = factories.redis_proc(executable=_BINARY, save=_NO_PERSISTENCE)
"""A second server that the restart test stops and starts, so no other test sees that."""

password_redis_proc = factories.redis_proc(
    executable=_BINARY, save=_NO_PERSISTENCE, password="right-password"
)
"""A server that requires a password, for the credential errors."""


@pytest.fixture(scope="session")
def redis_proc_real(request: pytest.FixtureRequest) -> RedisExecutor:
    """The session's redis-server process (skipped or failed when there is none, see above)."""
    require_redis_server()
    proc: RedisExecutor = request.getfixturevalue("redis_server_proc")
    return proc


@pytest.fixture(scope="session")
def redis_url(redis_proc_real: RedisExecutor) -> str:
    return f"redis://{redis_proc_real.host}:{redis_proc_real.port}/0"


@pytest.fixture
def restartable_redis(request: pytest.FixtureRequest) -> Iterator[RedisExecutor]:
    require_redis_server()
    proc: RedisExecutor = request.getfixturevalue("restartable_redis_proc")
    yield proc
    if not proc.running():
        proc.start()


@pytest.fixture(scope="session")
def password_redis_url(request: pytest.FixtureRequest) -> str:
    """The URL of a server whose password is ``right-password`` (not in the URL)."""
    require_redis_server()
    proc: RedisExecutor = request.getfixturevalue("password_redis_proc")
    return f"redis://{proc.host}:{proc.port}/0"


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client for looking at (and tampering with) what the backend stored."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


CLUSTER_NODES = 3


def _cluster_node(binary: str, datadir: Path, port: int) -> TCPExecutor:
    """One primary of the test cluster (pytest-redis's executor cannot enable cluster mode)."""
    datadir.mkdir()
    command = [
        binary,
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(datadir)),
        *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
        *("--save", "", "--appendonly", "no", "--logfile", "redis.log"),
    ]
    return TCPExecutor(command, host="127.0.0.1", port=port, timeout=30)


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
    binary = require_redis_server()
    base = tmp_path_factory.mktemp("redis-cluster")
    ports: list[int] = []
    while len(ports) < CLUSTER_NODES:
        port = port_for.get_port((20000, 40000), exclude_ports=ports)
        if port is not None and port_for.is_available(port + 10000):
            ports.append(port)
    nodes = [_cluster_node(binary, base / str(port), port) for port in ports]
    try:
        for node in nodes:
            node.start()
        _form_cluster(ports)
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for node in nodes:
            node.stop()
