"""Fixtures of the MCP binding's tests: the stores behind the example server.

The server runs on memory, and on a real redis-server where the redis test extra is installed
(pytest-redis starts it on a free loopback port, persistence off). Tests parametrize over what
is installed; ``tests/test_extras.py`` makes sure no expected backend silently went missing.
"""

from __future__ import annotations

import pytest
from servers import installed_backends, require_redis_server

MCP_BACKENDS = [name for name in ("memory", "redis") if name in installed_backends()]
"""Stores the conformance suite runs against (DynamoDB joins in the two-instance tests)."""

if "redis" in MCP_BACKENDS:
    from pytest_redis import factories
    from pytest_redis.executor import RedisExecutor

    mcp_redis_proc = factories.redis_proc(save='""')

    @pytest.fixture(scope="session")
    def mcp_redis_url(request: pytest.FixtureRequest) -> str:
        require_redis_server()
        proc: RedisExecutor = request.getfixturevalue("mcp_redis_proc")
        return f"redis://{proc.host}:{proc.port}/0"


def backend_args(request: pytest.FixtureRequest, backend: str, namespace: str) -> list[str]:
    """The example server's command-line options for ``backend``."""
    args = ["--backend", backend, "--namespace", namespace]
    if backend == "redis":
        url = request.getfixturevalue("mcp_redis_url")
        args += ["--backend-option", f"redis_url={url}"]
    return args
