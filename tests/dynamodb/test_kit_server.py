"""The whole conformance kit against the DynamoDB backend over HTTP, on moto's server.

This is the path a real endpoint takes (``--backend-option dynamodb_endpoint=...``): requests
are serialized, sent and parsed by botocore, and the clients run their thread pools
concurrently. The server counts requests, so the test below also proves they went over HTTP.
"""

from __future__ import annotations

import pytest

from conformance.contract import BackendContract
from conformance.harness import BackendFactory


class TestDynamoDbBackendOnMotoServer(BackendContract):
    @pytest.fixture
    def backend_factory(self, moto_http_factory: BackendFactory) -> BackendFactory:
        return moto_http_factory
