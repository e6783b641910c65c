-- One page of list_by_prefix in one round trip (KV-LIST-5, KV-LIST-6).
-- KEYS: partition index (zset, all scores 0, so ZRANGEBYLEX walks it in byte order).
-- ARGV: now, record key prefix (record key = prefix .. item), lo and hi ZRANGEBYLEX bounds,
--       limit ('0' = no limit), batch size.
-- Walks the index from lo, reads each record, skips dead ones and prunes entries whose hash is
-- gone, until limit live records are found or the range is exhausted, so a page is short only
-- when the listing is complete.
-- Replies {'ok', item, version, expires_at, data, ...} | {'malformed', field, item}.
local index = KEYS[1]
local now, record_prefix, lo, hi = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local limit, batch = tonumber(ARGV[5]), tonumber(ARGV[6])

local out = {'ok'}
local found = 0
while true do
  local items = redis.call('ZRANGEBYLEX', index, lo, hi, 'LIMIT', 0, batch)
  for _, item in ipairs(items) do
    local record = record_prefix .. item
    local stored = redis.call('HMGET', record, 'version', 'expires_at', 'data')
    local status, field = classify(record, stored[1], stored[2], now)
    if status == 'malformed' then
      return {'malformed', field, item}
    elseif status == 'absent' then
      -- Redis reclaimed the hash (PEXPIREAT). The expiry index entry stays, so that
      -- cleanup_expired still counts the record it removes.
      redis.call('ZREM', index, item)
    elseif status == 'live' then
      if not stored[3] then
        return {'malformed', 'data', item}
      end
      out[#out + 1] = item
      out[#out + 1] = stored[1]
      out[#out + 1] = stored[2]
      out[#out + 1] = stored[3]
      found = found + 1
      if found == limit then
        return out
      end
    end
  end
  if #items < batch then
    return out
  end
  lo = '(' .. items[#items]
end
