"""The whole conformance kit against the DynamoDB backend on moto in-process (the default)."""

from __future__ import annotations

import pytest

from conformance.contract import BackendContract
from conformance.harness import BackendFactory


class TestDynamoDbBackendOnMotoInProcess(BackendContract):
    @pytest.fixture
    def backend_factory(self, inprocess_factory: BackendFactory) -> BackendFactory:
        return inprocess_factory
