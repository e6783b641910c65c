-- One step of a list_by_prefix page: a bounded amount of work, whatever the partition holds.
-- KEYS: partition index (zset, all scores 0, so ZRANGEBYLEX walks it in byte order), partition
--       expiry index (zset by expires_at), then the record hash of each item in ARGV[9..], in
--       the same order.
-- ARGV: now, grace ('' = never prune), lo and hi ZRANGEBYLEX bounds, limit ('0' = none),
--       batch size, budget (index entries examined at most), hand-back size, then the items
--       whose record hashes are declared.
-- Walks the index from lo, at most `budget` entries. The expiry index's scores (ZMSCORE, one
-- call per batch) tell dead entries without reading their hashes: they are skipped, and those
-- dead for `grace` seconds (when Redis may reclaim their hash by itself) are pruned from the
-- partition index, so later pages do not walk them again (their expiry entry stays for
-- cleanup_expired, which removes the hash and counts it). Other entries are read, but only if
-- their hash is in KEYS: on meeting one whose hash is not, the step stops reading and hands
-- back that item and the candidates after it, which the caller declares before the next step
-- (so in cluster mode, through proxies and with script flags, nothing undeclared is touched).
-- Records this backend cannot decode, and index members that are not items, are skipped and
-- reported; an absent hash's index entry is pruned.
-- Replies {status, resume, found, damaged, undeclared}: status 'done' (range exhausted or
-- limit reached), 'more' (budget spent: the caller runs another step from resume) or
-- 'undeclared' (the caller declares `undeclared` and resumes); resume is the lo bound to go
-- on from; found is flat {item, version, expires_at, data, ...}; damaged is flat {item, what,
-- ...}. A partition index of the wrong type replies {'badindex', error}.
local index, expiry = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local grace = tonumber(ARGV[2])
local lo, hi = ARGV[3], ARGV[4]
local limit, batch = tonumber(ARGV[5]), tonumber(ARGV[6])
local budget, handback = tonumber(ARGV[7]), tonumber(ARGV[8])

local declared = {}
for position = 9, #ARGV do
  declared[ARGV[position]] = KEYS[position - 6]
end

local found, damaged, undeclared = {}, {}, {}
local count, examined = 0, 0
local resume, status = lo, nil

local function prune(items)
  if #items > 0 then
    redis.call('ZREM', index, unpack(items))
  end
end

while not status do
  local wanted = math.min(batch, budget - examined)
  if wanted <= 0 then
    status = 'more'
    break
  end
  local items = redis.pcall('ZRANGEBYLEX', index, lo, hi, 'LIMIT', 0, wanted)
  if items.err then
    return {'badindex', items.err}
  end
  local scores = {}
  if #items > 0 then
    scores = redis.pcall('ZMSCORE', expiry, unpack(items))
    if scores.err then
      scores = {}  -- an expiry index of the wrong type: read every hash instead
    end
  end
  local gone = {}
  for position, item in ipairs(items) do
    examined = examined + 1
    local score = scores[position] and tonumber(scores[position])
    if #undeclared == 0 then
      resume = '(' .. item
    end
    if score and now >= score then
      -- Dead (the expiry index holds only items that write.lua wrote, so no need to check
      -- the member), and gone for good once dead for the grace.
      if grace and now >= score + grace then
        gone[#gone + 1] = item
      end
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
        -- Redis reclaimed the hash (PEXPIREAT). The expiry index entry stays, so that
        -- cleanup_expired still counts the record it removes.
        gone[#gone + 1] = item
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
return {status, resume, found, damaged, undeclared}
