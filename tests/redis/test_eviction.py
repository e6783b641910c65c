"""The Redis backend refuses a server that may evict keys, on real servers of each policy.

A server under any ``maxmemory-policy`` but ``noeviction`` drops keys when it is full, which
loses acknowledged records without an error, so the first command (and the kit's check at open)
refuses it unless ``allow_eviction=True``. Servers that hide CONFIG (managed services rename
it) are asked through INFO; one that answers neither is opened with a warning.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mirakuru import TCPExecutor
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from servers import redis_server

from conformance.harness import ManualClock
from pmcp_tasks.errors import BackendError
from reference_backends.redis import RedisBackend, kit_factory
from reference_backends.redis.connect import eviction_policies

pytestmark = pytest.mark.anyio


def _server(tmp_path: Path, *options: str) -> Iterator[str]:
    server: TCPExecutor = redis_server(tmp_path, *options)
    with server:
        yield f"redis://{server.host}:{server.port}/0"


@pytest.fixture
def lru_url(tmp_path: Path) -> Iterator[str]:
    yield from _server(tmp_path, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")


@pytest.fixture
def lru_without_config_url(tmp_path: Path) -> Iterator[str]:
    """Evicting, with CONFIG renamed away as managed services do: only INFO tells."""
    yield from _server(
        tmp_path, "--maxmemory-policy", "volatile-ttl", "--rename-command", "CONFIG", ""
    )


@pytest.fixture
def silent_url(tmp_path: Path) -> Iterator[str]:
    """Evicting, and answering neither CONFIG nor INFO."""
    yield from _server(
        tmp_path,
        *("--maxmemory-policy", "allkeys-random"),
        *("--rename-command", "CONFIG", "", "--rename-command", "INFO", ""),
    )


@pytest.fixture
def namespace() -> str:
    return f"e-{uuid.uuid4().hex[:12]}"


async def test_an_evicting_server_is_refused_at_open_and_on_first_use(
    lru_url: str, namespace: str
) -> None:
    with pytest.raises(BackendError, match="allkeys-lru") as at_open:
        await kit_factory(namespace=namespace, clock=ManualClock(), redis_url=lru_url)
    message = str(at_open.value)
    assert "maxmemory-policy" in message
    assert "noeviction" in message
    assert "allow_eviction=True" in message
    backend = RedisBackend.from_url(lru_url, namespace=namespace)
    try:
        for _ in range(2):  # refused again: a refusal is not remembered as checked
            with pytest.raises(BackendError, match="allkeys-lru"):
                await backend.put("p:k", b"x")
    finally:
        await backend.aclose()
    async with Redis.from_url(lru_url) as raw:
        assert await raw.keys(f"{namespace}:*") == []  # refused before anything was written


async def test_allow_eviction_opens_an_evicting_server(lru_url: str, namespace: str) -> None:
    target = await kit_factory(
        namespace=namespace, clock=ManualClock(), redis_url=lru_url, allow_eviction="true"
    )
    backend = target.backend
    try:
        assert await backend.put("p:k", b"x") == 1
    finally:
        await backend.aclose()
    direct = RedisBackend.from_url(lru_url, namespace=namespace, allow_eviction=True)
    try:
        assert await direct.put("p:k", b"y") == 2
    finally:
        await direct.aclose()


async def test_a_server_without_config_is_checked_through_info(
    lru_without_config_url: str, namespace: str
) -> None:
    backend = RedisBackend.from_url(lru_without_config_url, namespace=namespace)
    try:
        with pytest.raises(BackendError, match="'volatile-ttl'"):
            await backend.get("p:k")
    finally:
        await backend.aclose()


async def test_a_server_that_answers_neither_opens_with_a_warning(
    silent_url: str, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    backend = RedisBackend.from_url(silent_url, namespace=namespace)
    try:
        with caplog.at_level(logging.WARNING, logger="pmcp_tasks"):
            assert await backend.put("p:k", b"x") == 1
            assert await backend.put("p:k", b"y") == 2
    finally:
        await backend.aclose()
    warnings = [r for r in caplog.records if r.name.startswith("pmcp_tasks")]
    assert len(warnings) == 1, warnings  # once per backend, at its first command
    assert "cannot tell whether Redis at 127.0.0.1:" in warnings[0].getMessage()
    assert "noeviction" in warnings[0].getMessage()


async def test_a_noeviction_server_opens_silently(
    redis_url: str, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    backend = RedisBackend.from_url(redis_url, namespace=namespace)
    try:
        with caplog.at_level(logging.WARNING, logger="pmcp_tasks"):
            assert await backend.put("p:k", b"x") == 1
        assert await backend.delete("p:k")
    finally:
        await backend.aclose()
    assert [r for r in caplog.records if r.name.startswith("pmcp_tasks")] == []


async def test_every_primary_of_a_cluster_is_checked(redis_cluster_url: str) -> None:
    """One evicting primary is enough to refuse the cluster, and it is named."""
    async with RedisCluster.from_url(redis_cluster_url) as cluster:
        primaries = cluster.get_primaries()
        assert set((await eviction_policies(cluster)).values()) == {"noeviction"}
        assert len(await eviction_policies(cluster)) == len(primaries) == 3
        evicting = primaries[1]
        await cluster.config_set("maxmemory-policy", "allkeys-lfu", target_nodes=evicting)
        try:
            url = redis_cluster_url.replace("redis://", "redis+cluster://")
            backend = RedisBackend.from_url(url, namespace=f"e-{uuid.uuid4().hex[:12]}")
            try:
                with pytest.raises(BackendError, match=f"{evicting.name} has 'allkeys-lfu'"):
                    await backend.get("p:k")
            finally:
                await backend.aclose()
        finally:
            await cluster.config_set("maxmemory-policy", "noeviction", target_nodes=evicting)
