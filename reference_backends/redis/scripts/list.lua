-- One step of a list_by_prefix page: a bounded amount of work, whatever the partition holds.
-- KEYS: partition index (zset, all scores 0, so ZRANGEBYLEX walks it in byte order), partition
--       expiry index (zset by expires_at, +inf for never), parked entries (zset by expires_at),
--       then the record hash of each item in ARGV[8..], in the same order.
-- ARGV: now, lo and hi ZRANGEBYLEX bounds, limit ('0' = none), batch size, budget (index
--       entries examined at most), hand-back size, then the items whose record hashes are
--       declared.
-- When the partition has at most `budget` live entries and some dead ones, the step takes the
-- live ones from the expiry index instead (live_in_order) and never meets a dead one.
-- Otherwise it walks the index from lo, at most `budget` entries. The expiry index's scores
-- (ZMSCORE, one call per batch) tell dead entries without reading their hashes: they are
-- parked, moved from the index to the parked set with their expiry as score, so that no later
-- page walks them again (their expiry entry stays for cleanup_expired, which removes the hash
-- and counts it).
-- A step first moves back the parked entries that are live at `now` (an injected clock that
-- went back: KV-LIVE-3), normally none, found by score without walking the others. Other
-- entries are read, but only if their hash is in KEYS: on meeting one whose hash is not, the
-- step stops reading and hands back that item and the candidates after it, which the caller
-- declares before the next step (so in cluster mode, through proxies and with script flags,
-- nothing undeclared is touched). Records this backend cannot decode, and index members that
-- are not items, are skipped and reported; an absent hash's index entry is parked.
-- Replies {status, resume, found, damaged, undeclared, replaced}: status 'done' (range
-- exhausted or limit reached), 'more' (budget spent: the caller runs another step from resume)
-- or 'undeclared' (the caller declares `undeclared` and resumes); resume is the lo bound to go
-- on from; found is flat {item, version, expires_at, data, ...}; damaged is flat {item, what,
-- ...}; replaced names a parked set of the wrong type, replaced by a fresh one. A partition
-- index of the wrong type replies {'badindex', error}.
local index, expiry, parked = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local lo, hi = ARGV[2], ARGV[3]
local limit, batch = tonumber(ARGV[4]), tonumber(ARGV[5])
local budget, handback = tonumber(ARGV[6]), tonumber(ARGV[7])

local declared = {}
for position = 8, #ARGV do
  declared[ARGV[position]] = KEYS[position - 4]
end

local found, damaged, undeclared, replaced = {}, {}, {}, {}
local count, examined = 0, 0
local resume, status = lo, nil

local function prune(items)
  if #items > 0 then
    redis.call('ZREM', index, unpack(items))
  end
end

-- Parked entries live again at now: back into the index before it is walked, at most a
-- budget's worth per step (the caller resumes from the same bound until none is left).
-- A parked set of the wrong type is replaced by a fresh one, as writes replace index keys.
local revived = index_call(replaced, 'ZRANGEBYSCORE', parked, '(' .. ARGV[1], '+inf', 'LIMIT', 0,
                           budget)
if #revived > 0 then
  local entries = {}
  for _, item in ipairs(revived) do
    entries[#entries + 1] = 0
    entries[#entries + 1] = item
  end
  local added = redis.pcall('ZADD', index, unpack(entries))
  if type(added) == 'table' and added.err then
    return {'badindex', added.err}
  end
  redis.call('ZREM', parked, unpack(revived))
  examined = #revived
end

-- The live entries in byte order, when they are few (at most `budget`) and the index also
-- holds dead ones: then a step reads them from the expiry index and never walks the dead ones,
-- however many there are (the first listing after a mass death costs as little as the next).
-- Their order is their rank in the index (ZRANK, byte order like ZRANGEBYLEX; Lua's string
-- comparison follows the server's locale). Trusted only while the three keys agree on what
-- they hold: every index entry has an expiry entry (write.lua scores a record that never
-- expires +inf) and every expiry entry is in the index or parked, so #index + #parked ==
-- #expiry. Damage, eviction or a partition written before the +inf scores breaks the count and
-- the step walks instead, as it always can. Returns nil to walk.
local function live_in_order()
  local sizes = {}
  for _, key in ipairs({index, expiry, parked}) do
    local size = redis.pcall('ZCARD', key)
    if type(size) ~= 'number' then
      return nil
    end
    sizes[#sizes + 1] = size
  end
  if sizes[1] + sizes[3] ~= sizes[2] then
    return nil
  end
  local live = redis.call('ZRANGEBYSCORE', expiry, '(' .. ARGV[1], '+inf', 'LIMIT', 0, budget + 1)
  if #live > budget or #live == sizes[1] then
    return nil  -- many live entries, or no dead ones in the way: the walk is as cheap
  end
  local first, stop = 0, sizes[1]
  if lo ~= '-' then
    local before = (string.sub(lo, 1, 1) == '[' and '(' or '[') .. string.sub(lo, 2)
    first = redis.call('ZLEXCOUNT', index, '-', before)
  end
  if hi ~= '+' then
    stop = redis.call('ZLEXCOUNT', index, '-', hi)
  end
  local ranked = {}
  for _, item in ipairs(live) do
    local rank = redis.call('ZRANK', index, item)
    if not rank then
      return nil  -- live but parked (more revived than one step moves back): walk
    end
    if rank >= first and rank < stop then
      ranked[#ranked + 1] = {rank, item}
    end
  end
  table.sort(ranked, function(a, b) return a[1] < b[1] end)
  local items = {}
  for position, entry in ipairs(ranked) do
    items[position] = entry[2]
  end
  return items
end

local candidates, taken = live_in_order(), 0

while not status do
  local wanted = math.min(batch, budget - examined)
  if wanted <= 0 then
    status = 'more'
    break
  end
  local items
  if candidates then
    items = {unpack(candidates, taken + 1, math.min(#candidates, taken + wanted))}
    taken = taken + #items
  else
    items = redis.pcall('ZRANGEBYLEX', index, lo, hi, 'LIMIT', 0, wanted)
    if items.err then
      return {'badindex', items.err}
    end
  end
  local scores = {}
  if #items > 0 then
    scores = redis.pcall('ZMSCORE', expiry, unpack(items))
    if scores.err then
      scores = {}  -- an expiry index of the wrong type: read every hash instead
    end
  end
  local gone, park, forget = {}, {}, {}
  for position, item in ipairs(items) do
    examined = examined + 1
    local score = scores[position] and tonumber(scores[position])
    if #undeclared == 0 then
      resume = '(' .. item
    end
    if score and now >= score then
      -- Dead (the expiry index holds only items that write.lua wrote, so no need to check
      -- the member): parked with its expiry, out of the way of later pages.
      gone[#gone + 1] = item
      park[#park + 1] = scores[position]
      park[#park + 1] = item
    elseif not string.match(item, '^[%w_.~%%-]+$') then
      if #undeclared == 0 then  -- else the next step walks it again and reports it
        damaged[#damaged + 1] = item
        damaged[#damaged + 1] = 'member'
      end
    elseif #undeclared > 0 or not declared[item] then
      if #undeclared == 0 then
        resume = '[' .. item
      end
      undeclared[#undeclared + 1] = item
      if #undeclared == handback then
        status = 'undeclared'
        break
      end
    else
      local record = declared[item]
      local stored = read_record(record, 'version', 'expires_at', 'data')
      local state, field = 'malformed', 'type'
      if stored then
        state, field = classify(record, stored[1], stored[2], ARGV[1])
      end
      if state == 'live' and not stored[3] then
        state, field = 'malformed', 'data'
      end
      if state == 'malformed' then
        damaged[#damaged + 1] = item
        damaged[#damaged + 1] = field
      elseif state == 'absent' then
        -- Redis reclaimed the hash (PEXPIREAT) before `now` saw it die. Parked with its
        -- expiry entry kept, so that cleanup_expired still counts the record it removes; a
        -- record that never expires (evicted) leaves both indexes (see live_in_order).
        gone[#gone + 1] = item
        if score == math.huge then
          forget[#forget + 1] = item
        elseif score then
          park[#park + 1] = scores[position]
          park[#park + 1] = item
        end
      elseif state == 'live' then
        found[#found + 1] = item
        found[#found + 1] = stored[1]
        found[#found + 1] = stored[2]
        found[#found + 1] = stored[3]
        count = count + 1
        if count == limit then
          status = 'done'
          break
        end
      end
    end
  end
  prune(gone)
  if #park > 0 then
    redis.call('ZADD', parked, unpack(park))
  end
  if #forget > 0 then
    redis.call('ZREM', expiry, unpack(forget))
  end
  if not status and #items < wanted then
    status = #undeclared > 0 and 'undeclared' or 'done'
  end
  if #items > 0 then
    lo = '(' .. items[#items]
  end
end
if status == 'more' and #undeclared > 0 then
  status = 'undeclared'
end
return {status, resume, found, damaged, undeclared, replaced}
