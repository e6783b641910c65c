"""Fixtures of the domain tests: a store over the in-memory backend on a clock moved by hand."""

from __future__ import annotations

import pytest

from conformance.harness import ManualClock
from pmcp_tasks import GenericTaskStore, StoreConfig
from reference_backends.memory import InMemoryBackend


@pytest.fixture
def store(clock: ManualClock, backend: InMemoryBackend) -> GenericTaskStore:
    return GenericTaskStore(backend, StoreConfig(), clock)
