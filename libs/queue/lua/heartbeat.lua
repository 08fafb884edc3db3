-- heartbeat: extends leases still held by their workers (long upstream calls).
--
-- KEYS[1]: shard hash tag "{hd:s<k>}" (every key used is built from it; see common.lua)
-- ARGV[1]: now (Unix us) or "" for Redis TIME
-- ARGV[2]: new lease duration from now (ms)
-- ARGV[3..]: pairs: id, lease token
-- Returns: one integer per job: the new expiry (Unix ms), or -1 when fenced (the token is not the
--          job's current lease; nothing changes).
-- Complexity: O(J log M).

local lease_ms = tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if parse_token(token) == id and redis.call('ZSCORE', K_LEASES, token) then
    local expires = NOW_MS + lease_ms
    redis.call('ZADD', K_LEASES, 'XX', fmt(expires), token)
    out[#out + 1] = expires
  else
    out[#out + 1] = -1
  end
end
finish()
return out
