"""The conformance kit against the Redis backend on a 3-primary Redis Cluster.

Each partition's keys share a hash tag, so every script runs on one slot; SCAN (cleanup, drop)
and UNLINK go through redis-py's cluster client, which fans them out over the primaries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from redis import RedisCluster as SyncRedisCluster
from redis.asyncio import RedisCluster

from conformance.contract import BackendContract
from conformance.harness import BackendFactory
from pmcp_tasks.backend import Clock
from reference_backends.redis import RedisBackend


class TestRedisBackendOnCluster(BackendContract):
    @pytest.fixture
    def backend_factory(self, redis_cluster_url: str) -> BackendFactory:
        def open_on_cluster(*, namespace: str, clock: Clock, **options: Any) -> RedisBackend:
            client = RedisCluster.from_url(redis_cluster_url)
            return RedisBackend(
                client, namespace=namespace, clock=clock, close_client=True, **options
            )

        return open_on_cluster

    @pytest.fixture(autouse=True)
    def no_keys_left_behind(self, redis_cluster_url: str) -> Iterator[None]:
        yield
        with SyncRedisCluster.from_url(redis_cluster_url) as client:
            assert client.dbsize() == 0  # summed over the primaries
