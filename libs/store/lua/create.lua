-- create.lua: adds a record to a table (a hash of id -> JSON) unless it exists, idempotently.
--
-- KEYS[1]  the table (HASH id -> record JSON)
-- KEYS[2]  the request-id key (STRING -> id), or KEYS[1] again when the create has no request id
-- KEYS[3]  an index (ZSET of ids by ARGV[5]), or KEYS[1] again when the table has none
-- ARGV[1]  record id
-- ARGV[2]  record JSON
-- ARGV[3]  "1" when KEYS[2] is a request-id key
-- ARGV[4]  request-id key lifetime, seconds
-- ARGV[5]  index score (when KEYS[3] is an index)
--
-- Returns {code, json}: code 0 created (json: ARGV[2]); 1 replay of an earlier create with this
-- request id (json: that record, or false if it was deleted since); 2 an id already exists and
-- the request id is new (json: false). Nothing changes unless code is 0.
-- Complexity: O(log n) in the index.
local has_request = ARGV[3] == '1'
if has_request then
  local prior = redis.call('GET', KEYS[2])
  if prior then
    return {1, redis.call('HGET', KEYS[1], prior)}
  end
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return {2, false}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if KEYS[3] ~= KEYS[1] then
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
end
if has_request then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[4])
end
return {0, ARGV[2]}
