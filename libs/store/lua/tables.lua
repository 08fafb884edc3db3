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

-- Reads the tables KEYS[first_key + w ..] (the ones after the W tables of rows, whose
-- arguments start at ARGV[at]): per table, the JSON of each id in order (false when absent).
local function read_tables(first_key, w, at)
  for _ = 1, w do at = at + 1 + 2 * tonumber(ARGV[at]) end
  local reads = {}
  for k = first_key + w, #KEYS do
    local m = tonumber(ARGV[at])
    local found = {}
    for i = at + 1, at + m, 1000 do
      local slice = redis.call('HMGET', KEYS[k], unpack(ARGV, i, math.min(i + 999, at + m)))
      for _, v in ipairs(slice) do found[#found + 1] = v end
    end
    reads[#reads + 1] = found
    at = at + 1 + m
  end
  return reads
end
