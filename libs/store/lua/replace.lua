-- replace.lua: compare-and-set of one record of a table (a hash of id -> JSON).
--
-- KEYS[1]  the table
-- KEYS[2]  a revision counter bumped on success, or KEYS[1] again for none
-- ARGV[1]  record id
-- ARGV[2]  the JSON the caller read (the expected current value)
-- ARGV[3]  the new JSON
--
-- Returns 0 replaced; 1 the record changed since it was read (nothing changed); 2 no such record.
-- Complexity: O(size of the record).
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 2 end
if current ~= ARGV[2] then return 1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if KEYS[2] ~= KEYS[1] then redis.call('INCR', KEYS[2]) end
return 0
