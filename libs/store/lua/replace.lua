-- replace.lua: compare-and-set of one record of a table (a hash of id -> JSON), with rows of
-- other tables written in the same atomic step when it succeeds; then reads what the caller
-- asked for. Runs after tables.lua.
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
  write_rows(3, tonumber(ARGV[4]), 5)
  if KEYS[2] ~= KEYS[1] then redis.call('INCR', KEYS[2]) end
  return 0
end

local code = write_outcome()

return {code, read_tables(3, tonumber(ARGV[4]), 5)}
