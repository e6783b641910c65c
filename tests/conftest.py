"""Shared settings for the project's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from servers import MotoHttp, dynalite_server, moto_server

from conformance.harness import ManualClock
from conformance.profiles import load_default_profile
from reference_backends.memory import InMemoryBackend, MemoryStore

load_default_profile()


@pytest.fixture
def anyio_backend() -> str:
    """Our async tests run on asyncio (the backends' clients are asyncio clients)."""
    return "asyncio"


@pytest.fixture(scope="session")
def moto_http() -> Iterator[MotoHttp]:
    """moto's DynamoDB server over HTTP on a free loopback port, for the whole session."""
    with moto_server() as server:
        yield server


@pytest.fixture(scope="session")
def dynalite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """dynalite's URL: a second DynamoDB engine, for the whole session (in memory)."""
    with dynalite_server(tmp_path_factory.mktemp("dynalite") / "dynalite.log") as url:
        yield url


# A store's worth of in-memory storage on a clock moved by hand (domain and reliability tests).
@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_800_000_000.0)


@pytest.fixture
def memory() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def backend(clock: ManualClock, memory: MemoryStore) -> InMemoryBackend:
    return InMemoryBackend(clock=clock, store=memory)
