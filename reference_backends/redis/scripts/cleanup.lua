-- cleanup_expired for one partition, at most `batch` records per call (the caller repeats
-- while a call removes a full batch, so Redis is never blocked for long).
-- KEYS: partition index, partition expiry index. ARGV: now, record key prefix, batch size.
-- Every write keeps the expiry index in step with the hash in the same script, so an entry
-- scored <= now is a record that is not live (at now == expires_at it is already gone).
-- Replies the number of records removed (whether or not Redis had already reclaimed the hash).
local index, expiry = KEYS[1], KEYS[2]
local now, record_prefix, batch = ARGV[1], ARGV[2], ARGV[3]

local dead = redis.call('ZRANGEBYSCORE', expiry, '-inf', now, 'LIMIT', 0, batch)
for _, item in ipairs(dead) do
  redis.call('DEL', record_prefix .. item)
  redis.call('ZREM', index, item)
  redis.call('ZREM', expiry, item)
end
return #dead
