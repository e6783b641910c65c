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
from redis import Redis

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
        assert _keys_on_the_primaries(redis_cluster_url) == 0


def _keys_on_the_primaries(seed_url: str) -> int:
    """``DBSIZE`` summed over the primaries, through plain clients: redis-py's sync
    ``RedisCluster`` (8.1) leaves open the connection it learnt the topology on, even after
    ``close()``, and that socket, garbage-collected during some later test, is a
    ``ResourceWarning`` there (an error under ``-W error``)."""
    with Redis.from_url(seed_url) as seed:
        nodes = seed.cluster("NODES")
    total = 0
    for address, node in nodes.items():
        if "master" in node["flags"]:
            host, port = address.split("@")[0].rsplit(":", 1)
            with Redis(host=host, port=int(port)) as primary:
                total += primary.dbsize()
    return total
