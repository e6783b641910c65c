-- delete. KEYS: record hash, partition index, partition expiry index, parked entries.
-- ARGV: now, item.
-- Replies {'ok', '1' | '0', damage, replaced}: '1' when a live record was removed; `damage`
-- is '' or what was wrong with a stored record this backend cannot decode (removed too, but
-- not counted as live); `replaced` lists index keys of the wrong type replaced by fresh ones.
-- Index entries go too, whatever the record's state.
local record, index, expiry, parked = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, item = ARGV[1], ARGV[2]

local status, damage = record_state(record, now)
if status ~= 'malformed' then
  damage = ''
end
redis.call('DEL', record)
local replaced = {}
index_call(replaced, 'ZREM', index, item)
index_call(replaced, 'ZREM', expiry, item)
index_call(replaced, 'ZREM', parked, item)
return {'ok', status == 'live' and '1' or '0', damage, replaced}
