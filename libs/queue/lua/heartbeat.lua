-- heartbeat: extends leases still held by their workers (long upstream calls).
--
-- KEYS[1]: shard hash tag "{hd:s<k>}" (every key used is built from it; see common.lua)
-- ARGV[1]: now (Unix us) or "" for Redis TIME
-- ARGV[2]: new lease duration from now (ms)
-- ARGV[3..]: pairs: id, lease token
-- Returns: one integer per job: the new expiry (Unix ms), or -1 when fenced (the token is not the
--          job's current lease; nothing changes).
-- Complexity: O(J log M).
--
-- Jobs leased together in one account visit share one expiry (their lease group, common.lua):
-- extending any of them extends the group, i.e. every job of it still held by the same worker.

local lease_ms = tonumber(ARGV[2])
local expires = NOW_MS + lease_ms
local expires_text = fmt(expires)
local extended = {}
local out = {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local prefix, tid, seq_text = split_token(token)
  if prefix and tid == id and redis.call('HEXISTS', k_group(seq_text), id) == 1 then
    if not extended[prefix] then
      extended[prefix] = true
      redis.call('ZADD', K_LEASES, 'XX', expires_text, prefix)
    end
    out[#out + 1] = expires
  else
    out[#out + 1] = -1
  end
end
finish()
return out
