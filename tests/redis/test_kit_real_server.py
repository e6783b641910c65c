"""The whole conformance kit against the Redis backend on a real server of the selected engine.

After every test the server must hold no key of the kit's namespaces (label, xdist worker and a
random part, e.g. ``kit-main-0123abcd4567``): the kit drops what it stored through
the ``drop_namespace`` hook, so a run against a shared server leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial

import pytest
from redis import Redis

from conformance.contract import BackendContract
from conformance.harness import BackendFactory
from reference_backends.redis import kit_factory


class TestRedisBackendOnRealServer(BackendContract):
    @pytest.fixture
    def backend_factory(self, redis_url: str) -> BackendFactory:
        return partial(kit_factory, redis_url=redis_url)

    @pytest.fixture(autouse=True)
    def no_keys_left_behind(self, redis_url: str) -> Iterator[None]:
        """Sync on purpose: some kit tests run their own event loops (Hypothesis)."""
        yield
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with Redis.from_url(redis_url) as client:
            left = list(client.scan_iter(match=f"*-{worker}-*"))
        assert left == [], f"the kit left keys behind: {left[:5]}"
