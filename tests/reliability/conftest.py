"""Fixtures of the reliability tests: a hand-moved clock and in-memory storage to wrap."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from reliability_support import kit_factory
from servers import installed_backends, redis_server, redis_server_url

from conformance.harness import BackendFactory

# Modules about one backend are collected where that backend is installed (no skips); the
# environments that have it are held to it by tests/test_extras.py.
collect_ignore = [
    f"test_{name}_{kind}.py"
    for name, kind in (("redis", "server"), ("dynamodb", "faults"))
    if name not in installed_backends()
]
ENGINES = [*installed_backends(), *(["redis-server"] if "redis" in installed_backends() else [])]
"""Each backend on its embedded engine, and Redis on a real server too: fakeredis runs the
scripts in its own Lua, which is not where a user's data lives."""


@pytest.fixture(scope="session")
def real_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("reliability-redis")) as server:
        yield redis_server_url(server)


@pytest.fixture(params=ENGINES)
def factory(request: pytest.FixtureRequest) -> BackendFactory:
    """Each backend's kit factory on its engine (memory, fakeredis, a redis-server, moto)."""
    if request.param != "redis-server":
        return kit_factory(request.param)
    redis_factory, url = kit_factory("redis"), request.getfixturevalue("real_redis_url")

    async def on_the_server(**options: Any) -> Any:
        return await redis_factory(**options, redis_url=url)

    return on_the_server
