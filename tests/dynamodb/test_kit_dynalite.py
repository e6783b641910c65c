"""The conformance kit against the DynamoDB backend on dynalite, over HTTP, less what moto covers.

dynalite is a DynamoDB written independently of AWS and moto (Node.js, LevelDB in memory):
what passes here does not depend on one emulator's quirks. It is atomic per item (moto
in-process is serialized by the kit factory, so only here do the race tests meet real
concurrency on a DynamoDB), shared across processes (the cross-process tests run), returns no
item on a failed condition and has no native TTL, so this run covers the backend's
consistent-read fallback and an open that reports the missing TTL (``missing_ttl=ignore``
here; the warning and the error are tested in test_engines.py).

Left out, because they check the backend's own logic over calls whose semantics both engines
share, and the kit on moto in-process (tox's ``pytest --backend dynamodb``) runs them at the
same depth: the model state machine (sequential single-client sequences; every clause it
names also has deterministic tests here, the fallback's conflicts included) and three volume
tests (600 records listed, 300 and 500 dead records cleaned: a few hundred sequential HTTP
writes each, paging and batching well below DynamoDB's 1 MB and 25-item limits, where the
engines do not differ). Measured in the dynamodb env at load average 7-9, these four took 314
of the dynalite run's 751 test-seconds. ``test_pages_are_full_across_long_runs_of_dead_records``
stays: a Limit applied before the filter is engine behaviour.
"""

from __future__ import annotations

from functools import partial

import pytest

from conformance.contract import BackendContract
from conformance.harness import BackendFactory
from reference_backends.dynamodb import kit_factory


class TestDynamoDbBackendOnDynalite(BackendContract):
    # Not collected here (see above); ``None`` rather than a skip, so that nothing reads as
    # skipped: the kit on moto in-process runs each of them.
    test_backend_matches_model = None
    test_a_large_partition_is_listed_whole = None
    test_cleanup_removes_hundreds_of_dead_records_in_one_call = None
    test_cleanup_removes_many_dead_records = None

    @pytest.fixture
    def backend_factory(self, dynalite: str) -> BackendFactory:
        return partial(kit_factory, dynamodb_endpoint=dynalite, missing_ttl="ignore")
