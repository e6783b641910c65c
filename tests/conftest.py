"""Shared settings for the project's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from servers import MotoHttp, moto_server

from conformance.profiles import load_default_profile

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
