-- stats: the shard's queue depths, oldest ready age and outcome counters, for metrics.
--
-- KEYS[1]: shard hash tag "{hd:s<k>}" (every key used is built from it; see common.lua)
-- ARGV[1]: now (Unix us) or "" for Redis TIME
-- ARGV[2]: how many ring accounts to sample for the oldest ready age (S)
-- Returns: { ready, delayed, leased, dead, oldest_ready_age_ms, ring_size, counters... } where
--   counters are flat name/value pairs: "e:<kind>" enqueued and "o:<kind>:<outcome>" finished
--   (outcome: ok, retry, dead, rate_limited, released, expired), cumulative since the shard began.
-- Complexity: O(S + C) for C counters (two calls per sampled account); depths are counters
--   kept by every script, never scans.
--
-- Oldest ready age (approximate): the age of the head (oldest) job of each of the S accounts
-- that have waited longest for a turn (lowest ring scores), the largest of them. Exact when the
-- ring holds at most S accounts; accounts paused or at their in-flight cap are not in the ring
-- and not counted.

local sample = tonumber(ARGV[2])
local h = redis.call('HGETALL', K_STATS)
local base = { r = 0, d = 0, l = 0, x = 0 }
local counters = {}
for i = 1, #h, 2 do
  local f = h[i]
  if base[f] ~= nil then
    base[f] = tonumber(h[i + 1])
  elseif f ~= 'q' then
    counters[#counters + 1] = f
    counters[#counters + 1] = tonumber(h[i + 1])
  end
end
local oldest = 0
for _, acct in ipairs(redis.call('ZRANGE', K_RING, 0, sample - 1)) do
  local id = redis.call('LINDEX', k_ready(acct), 0)
  local record = id and redis.call('HGET', K_JOBS, id)
  local r = record and read_record(record)
  if r and NOW_MS - r.enq > oldest then oldest = NOW_MS - r.enq end
end
local out = { base.r, base.d, base.l, base.x, oldest, redis.call('ZCARD', K_RING) }
for _, v in ipairs(counters) do out[#out + 1] = v end
return out
