"""Real redis-server fixtures (pytest-redis) for the Redis backend's tests.

Servers run on free loopback ports (pytest-redis picks one when no port is configured) with
persistence off (``save ""``, no AOF), so a restart starts empty. Without redis-server the
tests that need one are skipped with the reason, except under CI (``CI`` set), where a missing
server must fail the run rather than vanish from it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator

import pytest
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from redis.asyncio import Redis

_NO_PERSISTENCE = '""'

redis_server_proc = factories.redis_proc(save=_NO_PERSISTENCE)
"""The shared server of this test session."""

restartable_redis_proc = factories.redis_proc(save=_NO_PERSISTENCE)
"""A second server that the restart test stops and starts, so no other test sees that."""


def _require_redis_server() -> None:
    if shutil.which("redis-server") is not None:
        return
    reason = "redis-server is not on PATH (Debian: apt-get install redis-server)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so this is a failure, not a skip", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_proc_real(request: pytest.FixtureRequest) -> RedisExecutor:
    """The session's redis-server process (skipped or failed when there is none, see above)."""
    _require_redis_server()
    proc: RedisExecutor = request.getfixturevalue("redis_server_proc")
    return proc


@pytest.fixture(scope="session")
def redis_url(redis_proc_real: RedisExecutor) -> str:
    return f"redis://{redis_proc_real.host}:{redis_proc_real.port}/0"


@pytest.fixture
def restartable_redis(request: pytest.FixtureRequest) -> Iterator[RedisExecutor]:
    _require_redis_server()
    proc: RedisExecutor = request.getfixturevalue("restartable_redis_proc")
    yield proc
    if not proc.running():
        proc.start()


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client for looking at (and tampering with) what the backend stored."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()
