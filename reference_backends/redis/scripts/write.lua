-- put (ARGV[6] == '') and put_if_version (ARGV[6] = expected version as a decimal string).
-- KEYS: record hash, partition index (zset, scores 0), partition expiry index (zset by expiry),
--       parked entries (zset by expiry, see list.lua).
-- ARGV: now, item, data, expires_at ('' = never), pexpireat ms ('' = no server expiry),
--       expected, token (unique per call).
-- Replies {'ok', version, damage, replaced} | {'notfound', damage} | {'conflict', version}
--         | {'overflow', version}: `damage` is '' or what was wrong with a stored record this
-- backend cannot decode, which counts as absent and is overwritten; `replaced` lists index
-- keys of the wrong type that were replaced by fresh ones.
local record, index, expiry, parked = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, item, data, expires_at = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local pexpireat, expected, token = ARGV[5], ARGV[6], ARGV[7]

local status, damage, stored = record_state(record, now, 'token')
if status == 'malformed' then
  status = 'absent'
else
  damage = ''
  -- The stored token is this very call's: an earlier attempt of it wrote and its reply was
  -- lost, so the client retried. Report that write's success, not a conflict (KV-CAS-6).
  if status ~= 'absent' and stored[3] == token then
    return {'ok', stored[1], '', {}}
  end
end
if expected ~= '' then
  if status ~= 'live' then
    if expected ~= '0' then
      return {'notfound', damage}
    end
  elseif stored[1] ~= expected then
    return {'conflict', stored[1]}
  end
end
-- The first write command must be one that Redis refuses at maxmemory (HINCRBY, ZADD, HSET;
-- not DEL, which frees memory): Redis checks maxmemory only until a script has written, so a
-- script that began with a DEL went on writing on a full noeviction server. So on a full
-- server this write is refused before anything changed, like every other write.
local replaced = {}
if status == 'live' then
  if stored[1] == MAX_VERSION then
    return {'overflow', stored[1]}
  end
  redis.call('HINCRBY', record, 'version', 1)
  redis.call('HSET', record, 'data', data, 'expires_at', expires_at, 'token', token)
  index_call(replaced, 'ZADD', index, 0, item)
else
  -- A dead record is absent (KV-LIVE-2): start again from version 1. HSET sets every field
  -- a record has, and the TTL is set below, so only a key of another type (damage) is deleted
  -- first, once the index entry was written.
  index_call(replaced, 'ZADD', index, 0, item)
  if damage == 'type' then
    redis.call('DEL', record)
  end
  redis.call('HSET', record, 'version', '1', 'data', data, 'expires_at', expires_at,
             'token', token)
end
local version = redis.call('HGET', record, 'version')
index_call(replaced, 'ZREM', parked, item)
if expires_at == '' then
  index_call(replaced, 'ZADD', expiry, '+inf', item)
else
  index_call(replaced, 'ZADD', expiry, expires_at, item)
end
-- Last, because a PEXPIREAT in the past deletes the hash at once (the index entries stay
-- for list_by_prefix to park and cleanup_expired to count).
if pexpireat == '' then
  redis.call('PERSIST', record)
else
  redis.call('PEXPIREAT', record, pexpireat)
end
return {'ok', version, damage, replaced}
