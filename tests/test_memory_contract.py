"""Every contract clause on the in-memory reference backend, through the kit's base class.

Two instances: the kit factory (no size limit, with the memory kit hooks), and a factory that
returns a bare backend with a size limit, so that the size clauses (KV-SIZE-*) run too and the
route of a third-party factory without hooks is exercised (the hook tests skip, saying why).
"""

from __future__ import annotations

import pytest

from conformance import BackendContract
from conformance.harness import BackendFactory
from pmcp_tasks.backend import Clock
from reference_backends.memory import InMemoryBackend, MemoryStore, kit_factory


class TestMemoryContract(BackendContract):
    @pytest.fixture
    def backend_factory(self) -> BackendFactory:
        return kit_factory


class TestMemoryContractWithSizeLimit(BackendContract):
    @pytest.fixture
    def backend_factory(self) -> BackendFactory:
        store = MemoryStore()

        def factory(*, namespace: str, clock: Clock) -> InMemoryBackend:
            return InMemoryBackend(
                namespace=namespace, clock=clock, max_record_bytes=2 * 1024 * 1024, store=store
            )

        return factory
