"""The whole conformance kit against the DynamoDB backend on dynalite, over HTTP.

dynalite is a DynamoDB written independently of AWS and moto (Node.js, LevelDB in memory):
what passes here does not depend on one emulator's quirks. It returns no item on a failed
condition and has no native TTL, so this run covers the backend's consistent-read fallback
and an open that reports the missing TTL (``missing_ttl=ignore`` here; the warning and the
error are tested in test_engines.py).
"""

from __future__ import annotations

from functools import partial

import pytest

from conformance.contract import BackendContract
from conformance.harness import BackendFactory
from reference_backends.dynamodb import kit_factory


class TestDynamoDbBackendOnDynalite(BackendContract):
    @pytest.fixture
    def backend_factory(self, dynalite: str) -> BackendFactory:
        return partial(kit_factory, dynamodb_endpoint=dynalite, missing_ttl="ignore")
