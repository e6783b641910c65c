"""Fixtures of the MCP binding's tests: a real redis-server behind the example server.

pytest-redis starts it on a free loopback port (persistence off) where the redis test extra is
installed. Tests parametrize over what is installed; ``tests/test_extras.py`` makes sure no
expected backend silently went missing.
"""

from __future__ import annotations

import pytest
from mcp_support import MCP_BACKENDS, SHARED_BACKENDS
from servers import require_redis_server

# Without a shareable store installed (tox env "mcp") the two-instance tests have nothing to
# run on: not collected, rather than skipped; the mcp-redis and mcp-dynamodb envs run them.
collect_ignore = [] if SHARED_BACKENDS else ["test_two_instances.py"]

if "redis" in MCP_BACKENDS:
    from pytest_redis import factories
    from pytest_redis.executor import RedisExecutor

    mcp_redis_proc = factories.redis_proc(save='""')

    @pytest.fixture(scope="session")
    def mcp_redis_url(request: pytest.FixtureRequest) -> str:
        require_redis_server()
        proc: RedisExecutor = request.getfixturevalue("mcp_redis_proc")
        return f"redis://{proc.host}:{proc.port}/0"
