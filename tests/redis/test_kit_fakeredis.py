"""The whole conformance kit against the Redis backend on fakeredis (the kit's default)."""

from __future__ import annotations

import pytest

from conformance.contract import BackendContract
from conformance.harness import BackendFactory
from reference_backends.redis import kit_factory


class TestRedisBackendOnFakeRedis(BackendContract):
    @pytest.fixture
    def backend_factory(self) -> BackendFactory:
        return kit_factory
