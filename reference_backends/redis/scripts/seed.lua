-- The kit's seed hook (RedisKitHooks.seed in kit.py): store a record with an arbitrary
-- version (the kit tests versions near 2**53 and 2**63-1 this way, KV-VER-1). Same layout as
-- write.lua, no checks.
-- KEYS: record hash, partition index, partition expiry index, parked entries.
-- ARGV: item, data, version, expires_at ('' = never), pexpireat ms ('' = none).
local record, index, expiry, parked = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local item, data, version, expires_at, pexpireat = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

redis.call('DEL', record)
redis.call('HSET', record, 'version', version, 'data', data, 'expires_at', expires_at,
           'token', '')
redis.call('ZADD', index, 0, item)
redis.call('ZREM', parked, item)
if expires_at == '' then
  redis.call('ZADD', expiry, '+inf', item)
else
  redis.call('ZADD', expiry, expires_at, item)
end
if pexpireat ~= '' then
  redis.call('PEXPIREAT', record, pexpireat)
end
return 'OK'
