"""The conformance kit against the Redis backend on a 3-primary Redis Cluster, by URL alone.

The kit's own ``redis`` factory opens every backend from a ``redis+cluster://`` URL of one
node, as a user would with ``--backend-option redis_url=redis+cluster://...``. Each
partition's keys share a hash tag, so every script runs on one slot; SCAN (cleanup, drop) and
UNLINK go through redis-py's cluster client, which fans them out over the primaries.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest
from redis import RedisCluster as SyncRedisCluster

from conformance.contract import BackendContract
from conformance.harness import BackendFactory
from reference_backends.redis import kit_factory


class TestRedisBackendOnCluster(BackendContract):
    @pytest.fixture
    def backend_factory(self, redis_cluster_url: str) -> BackendFactory:
        return partial(kit_factory, redis_url=redis_cluster_url.replace("redis:", "redis+cluster:"))

    @pytest.fixture(autouse=True)
    def no_keys_left_behind(self, redis_cluster_url: str) -> Iterator[None]:
        yield
        with SyncRedisCluster.from_url(redis_cluster_url) as client:
            assert client.dbsize() == 0  # summed over the primaries
