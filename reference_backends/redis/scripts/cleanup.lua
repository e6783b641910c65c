-- cleanup_expired for one partition: removes the given items that are dead at `now`.
-- KEYS: partition index, partition expiry index, parked entries, then the record hash of each
--       item in ARGV[2..], in the same order.
-- ARGV: now, then the items (the caller read them from the expiry index, at most one batch).
-- Every write keeps the expiry index in step with the hash in the same script, so an item
-- scored <= now is a record that is not live (at now == expires_at it is already gone). An
-- item rewritten since the caller read the index has a new score (or none) and stays. One
-- ZMSCORE and DEL, and one ZREM per index, for the whole batch, so a run costs little per
-- record.
-- Replies the number of records removed (whether or not Redis had already reclaimed the hash).
local index, expiry, parked = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])

local items = {}
for position = 2, #ARGV do
  items[#items + 1] = ARGV[position]
end
local scores = redis.call('ZMSCORE', expiry, unpack(items))
local dead, hashes = {}, {}
for position, item in ipairs(items) do
  if scores[position] and tonumber(scores[position]) <= now then
    dead[#dead + 1] = item
    hashes[#hashes + 1] = KEYS[position + 3]
  end
end
if #dead > 0 then
  redis.call('DEL', unpack(hashes))
  index_call({}, 'ZREM', index, unpack(dead))
  index_call({}, 'ZREM', parked, unpack(dead))
  redis.call('ZREM', expiry, unpack(dead))
end
return #dead
