-- Prepended to every script of this backend (see backend.py: _load_script).
--
-- Versions stay strings from end to end: Lua numbers are doubles, which cannot hold every
-- integer up to 2**63-1, so a version is validated and compared as a decimal string and only
-- ever incremented by HINCRBY, whose arithmetic is Redis's own 64-bit integers.
local MAX_VERSION = '9223372036854775807'

local function valid_version(version)
  if type(version) ~= 'string' or not string.match(version, '^[1-9]%d*$') then
    return false
  end
  return #version < #MAX_VERSION or (#version == #MAX_VERSION and version <= MAX_VERSION)
end

-- Classifies a record hash from its version and expires_at fields (as HMGET gave them)
-- against the caller's clock reading `now` (a Python float repr, parsed exactly by strtod).
-- Returns 'absent', 'live', 'dead', or 'malformed' plus the name of the bad field.
-- expires_at is '' for "never", else the repr of a finite float; a record is live iff
-- now < expires_at (KV-LIVE-1).
local function classify(key, version, expires_at, now)
  if not version and not expires_at then
    if redis.call('EXISTS', key) == 1 then
      return 'malformed', 'version'
    end
    return 'absent'
  end
  if not valid_version(version) then
    return 'malformed', 'version'
  end
  if not expires_at then
    return 'malformed', 'expires_at'
  end
  if expires_at == '' then
    return 'live'
  end
  local expiry = tonumber(expires_at)
  if expiry == nil or expiry ~= expiry or expiry == math.huge or expiry == -math.huge then
    return 'malformed', 'expires_at'
  end
  if tonumber(now) < expiry then
    return 'live'
  end
  return 'dead'
end


-- Reads a record hash's fields; a key of another type (damage) reads as {'wrongtype'}.
local function read_record(key, ...)
  local stored = redis.pcall('HMGET', key, ...)
  if stored.err then
    if redis.call('TYPE', key).ok == 'hash' then
      error(stored.err)
    end
    return nil
  end
  return stored
end

-- A write command on an index key (a sorted set). A key of another type cannot hold index
-- entries of ours: it is damage, so it is replaced by a fresh sorted set and named in
-- `replaced`. Any other error is raised.
local function index_call(replaced, command, key, ...)
  local reply = redis.pcall(command, key, ...)
  if type(reply) == 'table' and reply.err then
    if redis.call('TYPE', key).ok == 'zset' then
      error(reply.err)
    end
    redis.call('DEL', key)
    replaced[#replaced + 1] = key
    return redis.call(command, key, ...)
  end
  return reply
end

-- What a write or delete finds at the record hash `key`: classify's status and field, where a
-- record this backend cannot decode is 'malformed' with what is wrong ('type' for a key of
-- another type, else the field), and the fields read (version, expires_at, then `...`).
local function record_state(key, now, ...)
  local stored = read_record(key, 'version', 'expires_at', ...)
  if not stored then
    return 'malformed', 'type', nil
  end
  local status, damage = classify(key, stored[1], stored[2], now)
  if status == 'live' and redis.call('HEXISTS', key, 'data') == 0 then
    return 'malformed', 'data', stored
  end
  return status, damage, stored
end
