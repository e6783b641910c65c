"""Fixtures of the reliability tests: a hand-moved clock and in-memory storage to wrap."""

from __future__ import annotations

import pytest

from conformance.harness import ManualClock
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
