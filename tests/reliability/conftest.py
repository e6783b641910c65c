"""Fixtures of the reliability tests: a hand-moved clock and in-memory storage to wrap."""

from __future__ import annotations

import pytest
from reliability_support import kit_factory
from servers import installed_backends

from conformance.harness import BackendFactory

# Modules about one backend are collected where that backend is installed (no skips); the
# environments that have it are held to it by tests/test_extras.py.
collect_ignore = [
    f"test_{name}_{kind}.py"
    for name, kind in (("redis", "server"), ("dynamodb", "faults"))
    if name not in installed_backends()
]


@pytest.fixture(params=installed_backends())
def factory(request: pytest.FixtureRequest) -> BackendFactory:
    """Each backend's kit factory on its embedded engine (memory, fakeredis, moto)."""
    return kit_factory(request.param)
