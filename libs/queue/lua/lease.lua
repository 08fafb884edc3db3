-- lease: hands out up to N jobs of one shard, fairly and within every limit.
--
-- KEYS[1]: shard hash tag "{hd:s<k>}" (every key used is built from it; see common.lua)
-- ARGV[1]: now (Unix us) or "" for Redis TIME
-- ARGV[2]: max jobs to lease (N)
-- ARGV[3]: lease duration (ms)
-- ARGV[4]: max delayed jobs to promote first
-- ARGV[5]: max expired leases to reap first
-- Returns: { hint_ms, throttled_account, throttled_team,
--            id_1, token_1, kind_1, account_1, team_1, tenant_1, payload_1, attempt_1,
--            max_attempts_1, unknown_1, enqueued_ms_1, expires_ms_1, id_2, ... }
--   hint_ms: 0 when more work may be ready now; otherwise milliseconds until the earliest known
--   event (an account's next turn, a delayed job's due time, a lease's expiry); -1 when the shard
--   has nothing scheduled at all. throttled_*: accounts this call re-scored because the account's
--   (or else the team's) bucket had no token. unknown_i is 1 when the previous attempt's outcome
--   is unknown (its lease expired): the handler must reconcile before acting again.
-- Complexity: O((N + promoted + reaped) log M) with a bounded number of ring visits
--   (3N + 32): each visit leases one job, or moves one account that cannot go now. About seven
--   calls per leased job.
--
-- Order of work: promote due delayed jobs, reap expired leases, then repeatedly take the ring's
-- earliest due account: skip (and unring) it when paused, its team is paused, or it is at its
-- in-flight cap; re-score it to when its and its team's buckets both have a token if either is
-- empty; otherwise take one token from each bucket, pop its oldest ready job, lease it with a
-- fresh token, and re-score the account behind every account already due.

local max_jobs = tonumber(ARGV[2])
local lease_ms = tonumber(ARGV[3])
promote(tonumber(ARGV[4]))
reap(tonumber(ARGV[5]))

local out = { 0, 0, 0 }
local leased = 0
local visits = max_jobs * 3 + 32
local exhausted = false
-- Due accounts are read from the ring in chunks, in score order. An account visited is re-scored
-- behind every account already due, so walking a chunk in order is the same as taking the
-- ring's first account again and again, at a fraction of the calls. Re-scores are written in one
-- ZADD before the next chunk is read (each account appears once in a chunk), and the batch's
-- leases in one ZADD at the end.
local chunk, pos = {}, 1
local rescored, leases, records = {}, {}, {}
local expires = NOW_MS + lease_ms
local expires_text = fmt(expires)
while leased < max_jobs do
  if visits == 0 then
    exhausted = true
    break
  end
  visits = visits - 1
  if pos > #chunk then
    if #rescored > 0 then
      zadd_pairs(K_RING, rescored)
      rescored = {}
    end
    local want = max_jobs - leased
    if want > 64 then want = 64 end
    chunk = redis.call('ZRANGEBYSCORE', K_RING, '-inf', RING_DUE_MAX, 'LIMIT', 0, want)
    pos = 1
    if #chunk == 0 then break end
  end
  local acct = chunk[pos]
  pos = pos + 1
  local a = load_account(acct)
  local t = nil
  if a.team then t = load_team(a.team) end
  if t == nil or a.paused or t.paused or (a.cap > 0 and a.inflight >= a.cap) then
    redis.call('ZREM', K_RING, acct)
  elseif gcra_allow_at(a.tat, a.tol, NOW) > NOW then
    out[2] = out[2] + 1
    rescored[#rescored + 1] = place_account(acct, a, t, nil)
    rescored[#rescored + 1] = acct
  elseif gcra_allow_at(t.tat, t.tol, NOW) > NOW then
    out[3] = out[3] + 1
    rescored[#rescored + 1] = place_account(acct, a, t, nil)
    rescored[#rescored + 1] = acct
  else
    local rk = k_ready(acct)
    local record = redis.call('LPOP', rk)
    if not record then
      redis.call('ZREM', K_RING, acct)
    else
      local r = unpack_record(record)
      local id = r[R_ID]
      stat('r', -1)
      do
        a.tat = gcra_take(a.tat, a.interval, NOW)
        t.tat = gcra_take(t.tat, t.interval, NOW)
        t.dirty = true
        local counted = a.cap > 0
        if counted then
          a.inflight = a.inflight + 1
          redis.call('HSET', a.key, 'f', a.inflight, 't', fmt(a.tat))
        else
          redis.call('HSET', a.key, 't', fmt(a.tat))
        end
        local token = make_token(id, r[R_KIND], acct, counted)
        leases[#leases + 1] = expires_text
        leases[#leases + 1] = token
        -- The flag is for this attempt only: the record kept for the lease drops it.
        local unknown = r[R_UNKNOWN]
        if unknown == 1 then
          r[R_UNKNOWN] = 0
          record = pack(r)
        end
        records[#records + 1] = token
        records[#records + 1] = record
        stat('l', 1)
        leased = leased + 1
        local n = #out
        out[n + 1] = id
        out[n + 2] = token
        out[n + 3] = r[R_KIND]
        out[n + 4] = acct
        out[n + 5] = a.team
        out[n + 6] = a.tenant
        out[n + 7] = r[R_PAYLOAD]
        out[n + 8] = r[R_FAILED] + 1
        out[n + 9] = r[R_MAX]
        out[n + 10] = unknown
        out[n + 11] = r[R_ENQ]
        out[n + 12] = expires
      end
      if (a.cap > 0 and a.inflight >= a.cap) or redis.call('LLEN', rk) == 0 then
        redis.call('ZREM', K_RING, acct)
      else
        rescored[#rescored + 1] = place_account(acct, a, t, nil)
        rescored[#rescored + 1] = acct
      end
    end
  end
end
if #rescored > 0 then zadd_pairs(K_RING, rescored) end
if #leases > 0 then
  zadd_pairs(K_LEASES, leases)
  for i = 1, #records, 1000 do
    redis.call('HSET', K_LEASED, unpack(records, i, math.min(i + 999, #records)))
  end
end

-- The hint: when could the next call find work?
if leased == max_jobs or exhausted then
  out[1] = 0
else
  local next_ms = -1
  local function consider(ms)
    if next_ms < 0 or ms < next_ms then next_ms = ms end
  end
  local r = redis.call('ZRANGE', K_RING, 0, 0, 'WITHSCORES')
  if #r > 0 then consider(ring_time_ms(tonumber(r[2]))) end
  local d = redis.call('ZRANGE', K_DELAYED, 0, 0, 'WITHSCORES')
  if #d > 0 then consider(tonumber(d[2])) end
  local l = redis.call('ZRANGE', K_LEASES, 0, 0, 'WITHSCORES')
  if #l > 0 then consider(tonumber(l[2]) + 1) end
  if next_ms < 0 then
    out[1] = -1
  elseif next_ms <= NOW_MS then
    out[1] = 0
  else
    out[1] = next_ms - NOW_MS
  end
end

finish()
return out
