"""Fixtures of the reliability tests: a hand-moved clock and in-memory storage to wrap."""

from __future__ import annotations

import pytest
from reliability_support import BACKENDS, kit_factory

from conformance.harness import BackendFactory, ManualClock
from reference_backends.memory import InMemoryBackend, MemoryStore


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_800_000_000.0)


@pytest.fixture
def memory() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def backend(clock: ManualClock, memory: MemoryStore) -> InMemoryBackend:
    return InMemoryBackend(clock=clock, store=memory)


@pytest.fixture(params=list(BACKENDS))
def factory(request: pytest.FixtureRequest) -> BackendFactory:
    """Each backend's kit factory on its embedded engine (memory, fakeredis, moto)."""
    return kit_factory(request.param)
