"""Shared settings for the project's own tests."""

from __future__ import annotations

import pytest

from conformance.profiles import load_default_profile

load_default_profile()


@pytest.fixture
def anyio_backend() -> str:
    """Our async tests run on asyncio (the backends' clients are asyncio clients)."""
    return "asyncio"
