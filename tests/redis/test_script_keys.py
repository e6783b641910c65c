"""Every Lua script of the Redis backend touches only the keys it declares in KEYS.

Redis requires it of scripts (cluster slots, proxies, Dragonfly and scripts with flags rely on
it), but a server only notices undeclared keys in some deployments. So here every script runs
with a prelude that shadows ``redis`` by a checker refusing any key not in ``KEYS`` (through
``redis.call`` and ``redis.pcall`` alike), under the
whole conformance kit (which drives every script through its branches) and on a real server.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from conformance.contract import BackendContract
from conformance.harness import BackendFactory, KitTarget
from reference_backends.redis import RedisBackend, kit_factory
from reference_backends.redis.backend import RedisInternals

pytestmark = pytest.mark.anyio

# Every command the scripts use takes its key first; DEL and EXISTS may take several.
_CHECKER = """
local declared_keys = {}
for _, declared in ipairs(KEYS) do
  declared_keys[declared] = true
end
local server = redis
local function check(command, ...)
  local arguments = {...}
  local upper = string.upper(command)
  local key_count = (upper == 'DEL' or upper == 'EXISTS') and #arguments or 1
  for position = 1, key_count do
    if not declared_keys[arguments[position]] then
      error('undeclared key ' .. tostring(arguments[position]) .. ' in ' .. upper)
    end
  end
end
local redis = setmetatable({
  call = function(command, ...)
    check(command, ...)
    return server.call(command, ...)
  end,
  pcall = function(command, ...)
    check(command, ...)
    return server.pcall(command, ...)
  end,
}, {__index = server})
"""


async def _checked_target(redis_url: str, **options: Any) -> KitTarget:
    """The kit's target on ``redis_url``, its backend running every script behind the checker."""
    target = await kit_factory(redis_url=redis_url, **options)
    assert isinstance(target.backend, RedisBackend)
    internals = RedisInternals(target.backend)
    internals.use_scripts(
        {name: _CHECKER + text for name, text in RedisInternals.shipped_scripts().items()}
    )
    return target


class TestEveryScriptDeclaresItsKeys(BackendContract):
    @pytest.fixture
    def backend_factory(self, redis_url: str) -> BackendFactory:
        return partial(_checked_target, redis_url=redis_url)


async def test_the_checker_refuses_a_key_built_inside_a_script(raw_redis: Redis) -> None:
    """The shape list.lua and cleanup.lua had: a record key made from an index entry."""
    built = _CHECKER + "return redis.call('HGET', KEYS[1] .. ':r:item', 'data')"
    declared = _CHECKER + "return redis.call('HGET', KEYS[1], 'data')"
    result: Any = await raw_redis.eval(declared, 1, "t-checker")
    assert result is None
    with pytest.raises(ResponseError, match="undeclared key t-checker:r:item in HGET"):
        await raw_redis.eval(built, 1, "t-checker")
    protected = _CHECKER + "return redis.pcall('HGET', KEYS[1] .. ':r:item', 'data')"
    with pytest.raises(ResponseError, match="undeclared key t-checker:r:item in HGET"):
        await raw_redis.eval(protected, 1, "t-checker")
