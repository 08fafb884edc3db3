-- stats: the shard's queue depths, oldest ready age and outcome counters, for metrics.
--
-- KEYS[1]: shard hash tag "{hd:s<k>}" (every key used is built from it; see common.lua)
-- ARGV[1]: now (Unix us) or "" for Redis TIME
-- ARGV[2]: how many ring accounts to sample for the oldest ready age (S)
-- Returns: { ready, delayed, leased, dead, oldest_ready_age_ms, ring_size, counters... } where
--   counters are flat name/value pairs: "e:<kind>" enqueued and "o:<kind>:<outcome>" finished
--   (outcome: ok, retry, dead, rate_limited, released, expired), cumulative since the shard began.
-- Complexity: O(S + T + C) for T tenants with work and C counters (two calls per sampled
--   account); depths are counters kept by every script, never scans.
--
-- Oldest ready age (approximate): how long the head (oldest) job has been ready (since its
-- enqueue, the end of its delay or backoff, or its return from a lease), of the accounts that
-- have waited longest for a turn (lowest ring scores; about S in all, shared between the
-- tenants' rings), the largest of them. Exact when the rings hold at most S accounts; accounts
-- paused or at their in-flight cap are not in a ring and not counted.

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
local ringed = redis.call('ZCARD', K_LEGACY_RING)
local tenants = redis.call('ZRANGE', K_TENANTS, 0, -1)
local per_tenant = math.max(1, math.ceil(sample / math.max(1, #tenants)))
for _, tenant in ipairs(tenants) do
  ringed = ringed + redis.call('ZCARD', k_ring(tenant))
  for _, acct in ipairs(redis.call('ZRANGE', k_ring(tenant), 0, per_tenant - 1)) do
    local id = redis.call('LINDEX', k_ready(acct), 0)
    local record = id and redis.call('HGET', K_JOBS, id)
    local r = record and read_record(record)
    if r and NOW_MS - r.ready > oldest then oldest = NOW_MS - r.ready end
  end
end
local out = { base.r, base.d, base.l, base.x, oldest, ringed }
for _, v in ipairs(counters) do out[#out + 1] = v end
return out
