"""Real redis-server fixtures (pytest-redis) for the Redis backend's tests.

Servers run on free loopback ports (pytest-redis picks one when no port is configured) with
persistence off (``save ""``, no AOF), so a restart starts empty. Without redis-server the
tests that need one are skipped with the reason, except under CI (``CI`` set), where a missing
server must fail the run rather than vanish from it.
"""

from __future__ import annotations

import shutil
import subprocess
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
from servers import require_redis_server

_NO_PERSISTENCE = '""'

redis_server_proc = factories.redis_proc(save=_NO_PERSISTENCE)
"""The shared server of this test session."""

restartable_redis_proc = factories.redis_proc(save=_NO_PERSISTENCE)
"""A second server that the restart test stops and starts, so no other test sees that."""


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


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client for looking at (and tampering with) what the backend stored."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


CLUSTER_NODES = 3


def _cluster_node(datadir: Path, port: int) -> TCPExecutor:
    """One primary of the test cluster (pytest-redis's executor cannot enable cluster mode)."""
    datadir.mkdir()
    command = [
        "redis-server",
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(datadir)),
        *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
        *("--save", "", "--appendonly", "no", "--logfile", "redis.log"),
    ]
    return TCPExecutor(command, host="127.0.0.1", port=port, timeout=30)


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 3-primary Redis Cluster on loopback; the URL of one node (the client finds the rest).

    Ports come from 20000-40000 so that each node's cluster bus port (port + 10000) is valid.
    """
    require_redis_server()
    if shutil.which("redis-cli") is None:
        pytest.fail("redis-server is installed but redis-cli (needed to form a cluster) is not")
    base = tmp_path_factory.mktemp("redis-cluster")
    ports: list[int] = []
    while len(ports) < CLUSTER_NODES:
        port = port_for.get_port((20000, 40000), exclude_ports=ports)
        if port is not None and port_for.is_available(port + 10000):
            ports.append(port)
    nodes = [_cluster_node(base / str(port), port) for port in ports]
    try:
        for node in nodes:
            node.start()
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        for port in ports:  # every node must agree that all slots are served
            with redis.Redis(port=port) as client:
                while client.cluster("INFO").get("cluster_state") != "ok":
                    if time.monotonic() > deadline:
                        pytest.fail(f"redis cluster node {port} never reached cluster_state:ok")
                    time.sleep(0.05)
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for node in nodes:
            node.stop()
