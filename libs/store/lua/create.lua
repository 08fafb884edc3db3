-- create.lua: adds a record to a table (a hash of id -> JSON) unless it exists, idempotently,
-- with rows of other tables and a counter in the same atomic step; then reads what the caller
-- asked for. Runs after tables.lua.
--
-- KEYS[1]  the table (HASH id -> record JSON)
-- KEYS[2]  the request-id key (STRING -> id), or KEYS[1] again when the create has no request id
-- KEYS[3]  an index (ZSET of ids by ARGV[5]), or KEYS[1] again when the table has none
-- KEYS[4]  a counter (STRING) bumped once when the record is created, or KEYS[1] again for none
-- KEYS[5 .. 4+W]  W tables (HASH id -> JSON) that receive rows when the record is created
-- KEYS[5+W ..]    tables read after the write, whatever the outcome
-- ARGV[1]  record id
-- ARGV[2]  record JSON
-- ARGV[3]  "1" when KEYS[2] is a request-id key
-- ARGV[4]  request-id key lifetime, seconds
-- ARGV[5]  index score (when KEYS[3] is an index)
-- ARGV[6]  W
-- then, for each of the W tables in order: a count n and n pairs (id, JSON);
-- then, for each table read in order: a count m and m ids.
--
-- Returns {code, json, revision, reads}: code 0 created (json: false, the caller has it); 1 replay
-- of an earlier create with this request id (json: that record, or false if it was deleted
-- since); 2 an id already exists and the request id is new (json: false). Nothing changes unless
-- code is 0. revision: KEYS[4]'s new value when bumped, else 0. reads: per table read, the JSON
-- of each id in order (false when absent).
-- Complexity: O(log n) in the index, plus O(1) per row written and per id read.
local function write_outcome()
  local has_request = ARGV[3] == '1'
  if has_request then
    local prior = redis.call('GET', KEYS[2])
    if prior then
      return 1, redis.call('HGET', KEYS[1], prior), 0
    end
  end
  if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
    return 2, false, 0
  end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  if KEYS[3] ~= KEYS[1] then
    redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
  end
  write_rows(5, tonumber(ARGV[6]), 7)
  local revision = 0
  if KEYS[4] ~= KEYS[1] then revision = redis.call('INCR', KEYS[4]) end
  if has_request then
    redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[4])
  end
  return 0, false, revision
end

local code, json, revision = write_outcome()

return {code, json, revision, read_tables(5, tonumber(ARGV[6]), 7)}
