-- One page of list_by_prefix, atomic (KV-LIST-5, KV-LIST-6), reading only declared keys.
-- KEYS: partition index (zset, all scores 0, so ZRANGEBYLEX walks it in byte order), then the
--       record hash of each item in ARGV[7..], in the same order.
-- ARGV: now, lo and hi ZRANGEBYLEX bounds, limit ('0' = no limit), batch size, how many
--       undeclared items to hand back at most, then the items whose record hashes are declared.
-- Walks the index from lo, reads each record, skips dead ones and prunes entries whose hash is
-- gone, until limit live records are found or the range is exhausted, so a page is short only
-- when the listing is complete. A record hash is read only if it is in KEYS: on meeting an item
-- whose hash is not, the script stops and hands back that item and the ones after it, which
-- the caller declares before running the page again (so in cluster mode, through proxies and
-- with script flags, the script touches nothing the server was not told about).
-- Replies {'ok', item, version, expires_at, data, ...} | {'malformed', field, item}
--         | {'undeclared', item, ...}.
local index = KEYS[1]
local now, lo, hi = ARGV[1], ARGV[2], ARGV[3]
local limit, batch, handback = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

local declared = {}
for position = 7, #ARGV do
  declared[ARGV[position]] = KEYS[position - 5]
end

local out = {'ok'}
local found = 0
while true do
  local items = redis.call('ZRANGEBYLEX', index, lo, hi, 'LIMIT', 0, batch)
  for _, item in ipairs(items) do
    local record = declared[item]
    if not record then
      local undeclared = redis.call('ZRANGEBYLEX', index, '[' .. item, hi, 'LIMIT', 0, handback)
      table.insert(undeclared, 1, 'undeclared')
      return undeclared
    end
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
