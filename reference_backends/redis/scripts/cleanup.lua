-- cleanup_expired for one partition: removes the given items that are dead at `now`.
-- KEYS: partition index, partition expiry index, then the record hash of each item in
--       ARGV[2..], in the same order.
-- ARGV: now, then the items (the caller read them from the expiry index, at most one batch).
-- Every write keeps the expiry index in step with the hash in the same script, so an item
-- scored <= now is a record that is not live (at now == expires_at it is already gone). An
-- item rewritten since the caller read the index has a new score (or none) and stays.
-- Replies the number of records removed (whether or not Redis had already reclaimed the hash).
local index, expiry = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])

local removed = 0
for position = 2, #ARGV do
  local item = ARGV[position]
  local score = redis.call('ZSCORE', expiry, item)
  if score and tonumber(score) <= now then
    redis.call('DEL', KEYS[position + 1])
    redis.call('ZREM', index, item)
    redis.call('ZREM', expiry, item)
    removed = removed + 1
  end
end
return removed
