"""Opening the Redis backend: URLs (cluster included), the check at open, and what errors say.

Every server here is real: a refused port is a loopback socket bound without listening, the
credential errors come from a redis-server with ``requirepass``, MOVED from a cluster node.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from conformance.harness import ManualClock
from pmcp_tasks.errors import BackendError, BackendUnavailable
from reference_backends.redis import RedisBackend, kit_factory
from reference_backends.redis.connect import redacted
from reference_backends.redis.kit import RedisKitHooks

pytestmark = pytest.mark.anyio


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections for as long as the test runs."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.fixture
def namespace() -> str:
    return f"c-{uuid.uuid4().hex[:12]}"


def test_redacted_hides_only_the_password() -> None:
    assert redacted("redis://app:s3cret@h:6379/0") == "redis://app:***@h:6379/0"
    assert redacted("rediss+cluster://:s3cret@h:7000") == "rediss+cluster://:***@h:7000"
    assert redacted("redis://h:6379/0") == "redis://h:6379/0"


async def test_an_unreachable_server_is_one_error_at_open_naming_the_url(
    refusing_port: int, namespace: str
) -> None:
    url = f"redis://app:s3cret@127.0.0.1:{refusing_port}/0"
    with pytest.raises(ValueError, match="cannot use Redis at") as refused:
        await kit_factory(namespace=namespace, clock=ManualClock(), redis_url=url)
    message = str(refused.value)
    assert f"redis://app:***@127.0.0.1:{refusing_port}/0" in message
    assert "s3cret" not in message
    assert f"ConnectionError: Error 111 connecting to 127.0.0.1:{refusing_port}" in message


async def test_a_refused_call_says_its_cause(refusing_port: int, namespace: str) -> None:
    backend = RedisBackend.from_url(
        f"redis://127.0.0.1:{refusing_port}/0", namespace=namespace, retries=1
    )
    try:
        with pytest.raises(BackendError) as refused:
            await backend.put("p:k", b"x")
    finally:
        await backend.aclose()
    message = str(refused.value)
    assert f"ConnectionError: Error 111 connecting to 127.0.0.1:{refusing_port}" in message
    assert "network:ConnectionError" not in message


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [(":wrong-password@", "refused the credentials"), ("", "needs credentials")],
)
async def test_wrong_or_missing_credentials_are_one_error_at_open(
    password_redis_url: str, namespace: str, credentials: str, expected: str
) -> None:
    url = password_redis_url.replace("redis://", f"redis://{credentials}")
    with pytest.raises(ValueError, match=expected) as refused:
        await kit_factory(namespace=namespace, clock=ManualClock(), redis_url=url)
    message = str(refused.value)
    assert redacted(url) in message
    assert "wrong-password" not in message
    assert "AuthenticationError: " in message
    right = password_redis_url.replace("redis://", "redis://:right-password@")
    target = await kit_factory(namespace=namespace, clock=ManualClock(), redis_url=right)
    backend = target.backend
    try:
        assert await backend.put("p:k", b"x") == 1
    finally:
        await RedisKitHooks(backend).drop_namespace()
        await backend.aclose()


async def test_a_cluster_node_without_cluster_mode_is_refused_at_open(
    redis_cluster_url: str, namespace: str
) -> None:
    with pytest.raises(ValueError, match="is a node of a Redis Cluster: use a redis\\+cluster"):
        await kit_factory(namespace=namespace, clock=ManualClock(), redis_url=redis_cluster_url)


async def test_moved_says_the_slot_and_the_node(redis_cluster_url: str, namespace: str) -> None:
    """A plain client on one node (no check at open): the error shows where the key lives."""
    async with RedisCluster.from_url(redis_cluster_url) as cluster:
        node_port = int(redis_cluster_url.rsplit(":", 1)[1].split("/")[0])
        partition = next(
            f"p{i}"
            for i in range(1000)
            if cluster.get_node_from_key(f"{namespace}:{{p{i}}}:i").port != node_port
        )
        owner = cluster.get_node_from_key(f"{namespace}:{{{partition}}}:i")
    backend = RedisBackend.from_url(redis_cluster_url, namespace=namespace, retries=0)
    try:
        with pytest.raises(BackendError) as moved:  # not BackendUnavailable: it was sent
            await backend.put(f"{partition}:k", b"x")
    finally:
        await backend.aclose()
    assert not isinstance(moved.value, BackendUnavailable)
    slot = key_slot(partition.encode())
    assert f"MovedError: {slot} {owner.host}:{owner.port}" in str(moved.value), str(moved.value)


@pytest.mark.parametrize("how", ["scheme", "argument", "kit option"])
async def test_a_cluster_by_url_alone(redis_cluster_url: str, namespace: str, how: str) -> None:
    clock = ManualClock()
    if how == "scheme":
        url = redis_cluster_url.replace("redis://", "redis+cluster://")
        backend = RedisBackend.from_url(url, namespace=namespace, clock=clock)
    elif how == "argument":
        backend = RedisBackend.from_url(
            redis_cluster_url, cluster=True, namespace=namespace, clock=clock
        )
    else:
        target = await kit_factory(
            namespace=namespace, clock=clock, redis_url=redis_cluster_url, cluster="true"
        )
        backend = target.backend
    try:
        partitions = [f"p{i}" for i in range(12)]  # spread over the three primaries
        for partition in partitions:
            assert await backend.put(f"{partition}:k", b"x", expires_at=clock() + 1) == 1
        assert len({key_slot(p.encode()) for p in partitions}) == 12
        assert [k for k, _ in await backend.list_by_prefix("p3:")] == ["p3:k"]
        clock.advance(2)
        assert await backend.cleanup_expired() == 12
    finally:
        await RedisKitHooks(backend).drop_namespace()
        await backend.aclose()


def test_a_client_and_connection_settings_cannot_be_combined() -> None:
    with pytest.raises(TypeError, match="socket_timeout"):
        RedisBackend(RedisCluster(host="127.0.0.1"), socket_timeout=1.0)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="retries"):
        RedisBackend.from_client(RedisCluster(host="127.0.0.1"), retries=1)
    with pytest.raises(ValueError, match=r"use RedisBackend\.from_url"):
        RedisBackend("redis://127.0.0.1:6379/0")  # type: ignore[arg-type]


def test_the_kits_pre_run_probe_reports_a_refusal_as_one_usage_error(refusing_port: int) -> None:
    from conformance.registry import SelectedBackend, probe

    url = f"redis://127.0.0.1:{refusing_port}/0"
    with pytest.raises(pytest.UsageError, match=f"cannot use Redis at {url}: ConnectionError"):
        probe(SelectedBackend("redis", kit_factory, {"redis_url": url}))
