"""The whole conformance kit against the Redis backend on fakeredis (the kit's default)."""

from __future__ import annotations

from functools import partial

import pytest

from conformance.contract import BackendContract, ContractFixtures
from conformance.contract.capabilities import CapabilitiesContract
from conformance.contract.sizes import SizesContract
from conformance.harness import BackendFactory
from reference_backends.redis import kit_factory


class TestRedisBackendOnFakeRedis(BackendContract):
    @pytest.fixture
    def backend_factory(self) -> BackendFactory:
        return kit_factory


class TestRedisBackendWithASizeLimit(SizesContract, CapabilitiesContract, ContractFixtures):
    """The size clauses need a declared limit, which the backend has only when given one."""

    @pytest.fixture
    def backend_factory(self) -> BackendFactory:
        return partial(kit_factory, max_record_bytes="4096")
