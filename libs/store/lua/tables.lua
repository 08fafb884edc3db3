-- tables.lua: the rows and reads that create.lua and replace.lua carry beside their record;
-- prepended to each of them at load time (RecordStore's scripts), so both take them alike.
--
-- A script's KEYS end with W tables that receive rows, then the tables it reads. Its ARGV hold,
-- from some index on, for each of the W tables a count n and n pairs (id, JSON), then for each
-- table read a count m and m ids.

-- Writes the rows of the W tables KEYS[first_key .. first_key + W - 1] from ARGV[at ..].
local function write_rows(first_key, w, at)
  for k = first_key, first_key + w - 1 do
    local n = tonumber(ARGV[at])
    local first, last = at + 1, at + 2 * n
    -- In slices: unpack() of thousands of arguments would overflow Lua's C stack.
    for i = first, last, 1000 do
      redis.call('HSET', KEYS[k], unpack(ARGV, i, math.min(i + 999, last)))
    end
    at = last + 1
  end
end

-- The index in ARGV after the rows of W tables that start at ARGV[at].
local function skip_rows(w, at)
  for _ = 1, w do at = at + 1 + 2 * tonumber(ARGV[at]) end
  return at
end

-- The index in ARGV after the ids of `count` tables that start at ARGV[at] (per table a count m
-- and m ids).
local function skip_lookups(count, at)
  for _ = 1, count do at = at + 1 + tonumber(ARGV[at]) end
  return at
end

-- HMGET of `ids` in `key`, in slices (see write_rows): the JSON of each id in order (false when
-- absent).
local function hmget(key, ids, first, last)
  local found = {}
  for i = first, last, 1000 do
    local slice = redis.call('HMGET', key, unpack(ids, i, math.min(i + 999, last)))
    for _, v in ipairs(slice) do found[#found + 1] = v end
  end
  return found
end

-- Reads `count` tables KEYS[first_key ..] at the ids of ARGV[at ..] (per table a count m and m
-- ids): per table, the JSON of each id in order (false when absent); and the index in ARGV after
-- them.
local function read_lookups(first_key, count, at)
  local reads = {}
  for k = first_key, first_key + count - 1 do
    local m = tonumber(ARGV[at])
    reads[#reads + 1] = hmget(KEYS[k], ARGV, at + 1, at + m)
    at = at + 1 + m
  end
  return reads, at
end

-- Reads the tables KEYS[first_key + w ..] (the ones after the W tables of rows, whose
-- arguments start at ARGV[at]): per table, the JSON of each id in order (false when absent).
local function read_tables(first_key, w, at)
  return (read_lookups(first_key + w, #KEYS - first_key - w + 1, skip_rows(w, at)))
end
