"""RedisNotifier, the cancel notices over pub/sub, on a real redis-server and on a Redis
Cluster, where instances connected to different nodes hear each other."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio.cluster import RedisCluster

from reference_backends.redis.notify import RedisNotifier

pytestmark = pytest.mark.anyio
SAFETY_NET = 60.0
"""Seconds before a test gives up on a notice (a guard against a hang, not a timing claim)."""


async def _heard(speaker: RedisNotifier, listener: RedisNotifier) -> list[str]:
    """What ``listener`` hears once ``speaker`` published two task keys."""
    heard: list[str] = []
    both = asyncio.Event()

    def on_notice(key: str) -> None:
        heard.append(key)
        if len(heard) == 2:
            both.set()

    await listener.listen(on_notice)  # subscribed when it returns
    await speaker.publish("alice:t1")
    await speaker.publish("bob:t2")
    await asyncio.wait_for(both.wait(), SAFETY_NET)
    return heard


async def test_a_notice_published_by_one_instance_reaches_another(redis_url: str) -> None:
    namespace = f"n-{uuid.uuid4().hex[:8]}"
    speaker = RedisNotifier.from_url(redis_url, namespace=namespace)
    listener = RedisNotifier.from_url(redis_url, namespace=namespace)
    try:
        assert await _heard(speaker, listener) == ["alice:t1", "bob:t2"]
    finally:
        await speaker.aclose()
        await listener.aclose()


async def test_on_a_cluster_instances_on_different_nodes_hear_each_other(
    redis_cluster_url: str,
) -> None:
    """The speaker is given the cluster's URL (``redis+cluster://``, as the backend is); the
    listener is connected to another primary."""
    async with RedisCluster.from_url(redis_cluster_url) as cluster:
        ports = sorted(node.port for node in cluster.get_primaries())
    seed = int(redis_cluster_url.rsplit(":", 1)[1].split("/")[0])
    other = next(port for port in ports if port != seed)
    namespace = f"n-{uuid.uuid4().hex[:8]}"
    speaker = RedisNotifier.from_url(
        redis_cluster_url.replace("redis://", "redis+cluster://"), namespace=namespace
    )
    listener = RedisNotifier.from_url(f"redis://127.0.0.1:{other}/0", namespace=namespace)
    try:
        assert await _heard(speaker, listener) == ["alice:t1", "bob:t2"]
    finally:
        await speaker.aclose()
        await listener.aclose()
