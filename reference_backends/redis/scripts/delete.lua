-- delete. KEYS: record hash, partition index, partition expiry index. ARGV: now, item.
-- Replies {'ok', '1'} when a live record was removed, {'ok', '0'} otherwise,
-- or {'malformed', field}. Index entries go too, whatever the record's state.
local record, index, expiry = KEYS[1], KEYS[2], KEYS[3]
local now, item = ARGV[1], ARGV[2]

local stored = redis.call('HMGET', record, 'version', 'expires_at')
local status, field = classify(record, stored[1], stored[2], now)
if status == 'malformed' then
  return {'malformed', field}
end
redis.call('DEL', record)
redis.call('ZREM', index, item)
redis.call('ZREM', expiry, item)
if status == 'live' then
  return {'ok', '1'}
end
return {'ok', '0'}
