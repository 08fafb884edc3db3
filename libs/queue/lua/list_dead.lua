-- list_dead: pages through the shard's dead letters, newest first.
--
-- KEYS[1]: shard hash tag "{hd:s<k>}" (every key used is built from it; see common.lua)
-- ARGV[1]: now (Unix us) or "" (unused; kept for a uniform argument layout)
-- ARGV[2]: offset, ARGV[3]: count
-- Returns: { total, id_1, kind_1, account_1, payload_1, attempts_1, reason_1, dead_at_ms_1, ... }
-- Complexity: O(log D + count).

local ids = redis.call('ZREVRANGE', K_DEAD, tonumber(ARGV[2]), tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1)
local out = { redis.call('ZCARD', K_DEAD) }
local records = {}
if #ids > 0 then records = redis.call('HMGET', K_JOBS, unpack(ids)) end
for i, id in ipairs(ids) do
  local r = {}
  if records[i] then r = read_record(records[i]) or {} end
  out[#out + 1] = id
  out[#out + 1] = r.kind or ''
  out[#out + 1] = r.acct or ''
  out[#out + 1] = r.payload or ''
  out[#out + 1] = r.failed or 0
  out[#out + 1] = r.reason or ''
  out[#out + 1] = r.dead or 0
end
return out
