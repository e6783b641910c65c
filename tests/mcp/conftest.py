"""Fixtures of the MCP binding's tests: a real redis-server behind the example server.

It runs on a free loopback port, persistence off (``tests/servers.py: redis_server``), where the
redis test extra is installed. Tests parametrize over what is installed;
``tests/test_extras.py`` makes sure no expected backend silently went missing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mcp_support import SHARED_BACKENDS
from servers import redis_server, redis_server_url

# Without a shareable store installed (tox env "mcp") the two-instance tests have nothing to
# run on: not collected, rather than skipped; the mcp-redis and mcp-dynamodb envs run them.
collect_ignore = [] if SHARED_BACKENDS else ["test_two_instances.py"]


@pytest.fixture(scope="session")
def mcp_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("mcp-redis")) as server:
        yield redis_server_url(server)
