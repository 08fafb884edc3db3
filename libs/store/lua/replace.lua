-- replace.lua: compare-and-set of one record of a table (a hash of id -> JSON), with rows of
-- other tables written in the same atomic step when it succeeds; then reads what the caller
-- asked for.
--
-- KEYS[1]  the table
-- KEYS[2]  a revision counter bumped on success, or KEYS[1] again for none
-- KEYS[3 .. 2+W]  W tables (HASH id -> JSON) that receive rows when the record is replaced
-- KEYS[3+W ..]    tables read after the write, whatever the outcome
-- ARGV[1]  record id
-- ARGV[2]  the JSON the caller read (the expected current value)
-- ARGV[3]  the new JSON
-- ARGV[4]  W
-- then, for each of the W tables in order: a count n and n pairs (id, JSON);
-- then, for each table read in order: a count m and m ids.
--
-- Returns {code, reads}: code 0 replaced; 1 the record changed since it was read; 2 no such
-- record. Nothing changes unless code is 0. reads: per table read, the JSON of each id in order
-- (false when absent).
-- Complexity: O(size of the record), plus O(1) per row written and per id read.
local function write_outcome()
  local current = redis.call('HGET', KEYS[1], ARGV[1])
  if not current then return 2 end
  if current ~= ARGV[2] then return 1 end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  local at = 5
  for k = 3, 2 + tonumber(ARGV[4]) do
    local n = tonumber(ARGV[at])
    local first, last = at + 1, at + 2 * n
    -- In slices: unpack() of thousands of arguments would overflow Lua's C stack.
    for i = first, last, 1000 do
      redis.call('HSET', KEYS[k], unpack(ARGV, i, math.min(i + 999, last)))
    end
    at = last + 1
  end
  if KEYS[2] ~= KEYS[1] then redis.call('INCR', KEYS[2]) end
  return 0
end

local code = write_outcome()

local at = 5
for _ = 3, 2 + tonumber(ARGV[4]) do at = at + 1 + 2 * tonumber(ARGV[at]) end
local reads = {}
for k = 3 + tonumber(ARGV[4]), #KEYS do
  local m = tonumber(ARGV[at])
  local found = {}
  for i = at + 1, at + m, 1000 do
    local slice = redis.call('HMGET', KEYS[k], unpack(ARGV, i, math.min(i + 999, at + m)))
    for _, v in ipairs(slice) do found[#found + 1] = v end
  end
  reads[#reads + 1] = found
  at = at + 1 + m
end
return {code, reads}
