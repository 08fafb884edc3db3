-- lease: hands out up to N jobs of one shard, fairly and within every limit.
--
-- KEYS[1]: shard hash tag "{hd:s<k>}" (every key used is built from it; see common.lua)
-- ARGV[1]: now (Unix us) or "" for Redis TIME
-- ARGV[2]: max jobs to lease (N)
-- ARGV[3]: lease duration (ms)
-- ARGV[4]: max delayed jobs to promote first
-- ARGV[5]: max expired lease groups to reap first
-- ARGV[6]: max jobs per account visit (V >= 1; 1 is strict job-by-job round-robin)
-- Returns: { hint_ms, throttled_account, throttled_team, expires_ms,
--            then per lease group (the jobs of one kind leased in one account visit):
--            account, team, tenant, prefix, n, then n times: id, record }
--   hint_ms: 0 when more work may be ready now; otherwise milliseconds until the earliest known
--   event (an account's next turn, a delayed job's due time, a lease's expiry); -1 when the shard
--   has nothing scheduled at all. throttled_*: accounts this call re-scored because the account's
--   (or else the team's) bucket had no token. expires_ms: every lease's expiry (Unix ms).
--   A job's lease token is prefix .. id (common.lua). record: the job's record as stored
--   (common.lua; herald/queue/record.h), including the "previous outcome unknown" flag of this
--   attempt (the stored record drops it: it is for this attempt only); this attempt's number is
--   the record's failed count + 1.
-- Complexity: O((N + promoted + reaped) log M) with a bounded number of account visits (3N + 32):
--   each visit leases up to V jobs of one account, or moves one account that cannot go now.
--   About five calls per visit and none per job: the batch's records are read with one HMGET,
--   each group's ids written with one HSET, and the groups' expiries with one ZADD. Choosing
--   the tenant of a visit scans the T tenants with work due (at most 1024) in Lua, no call; each
--   tenant visited costs two calls more at the end (its ring's head, its P:tr score).
--
-- Order of work: promote due delayed jobs, reap expired leases, then repeatedly pick the tenant
-- with the lowest pass among those with an account due, and take that tenant's ring's earliest
-- due account: skip (and unring) it when paused, its team is paused, or it is at its in-flight
-- cap; re-score it to when its and its team's buckets both have a token if either is empty;
-- otherwise take k = min(V, jobs still wanted, in-flight room, tokens in the account's bucket,
-- tokens in the team's bucket) tokens from each bucket and its k oldest ready jobs (fewer if it
-- has fewer), lease them with fresh tokens, re-score the account behind every account of its
-- tenant already due, and advance the tenant's pass by k x 1e6 / weight. Taking k tokens at once
-- is k single takes at the same instant, so no window ever holds more than either limit allows.
-- Fairness: tenants share the shard's leases in proportion to their weights (stride scheduling;
-- a tenant that comes back from idle starts at the shard's virtual time, see tenant_joined), and
-- within a tenant its accounts go round-robin by visit.

local max_jobs = tonumber(ARGV[2])
local lease_ms = tonumber(ARGV[3])
local visit_cap = tonumber(ARGV[6])
if visit_cap == nil or visit_cap < 1 then visit_cap = 1 end

-- Accounts still in the single ring of earlier versions move to their tenants' rings, a bounded
-- number per call, keeping their scores.
local legacy = redis.call('ZRANGE', K_LEGACY_RING, 0, 255, 'WITHSCORES')
for i = 1, #legacy, 2 do
  ring_add(redis.call('HGET', k_acct(legacy[i]), 'tn') or '', legacy[i], legacy[i + 1], 'lt')
  redis.call('ZREM', K_LEGACY_RING, legacy[i])
end

promote(tonumber(ARGV[4]))
reap(tonumber(ARGV[5]))

local expires = NOW_MS + lease_ms
local out = { 0, 0, 0, expires }
local leased = 0
local visits = max_jobs * 3 + 32
local exhausted = false

-- The tenants that may have an account due, with their passes and strides.
local active = redis.call('ZRANGEBYSCORE', K_TENANTS, '-inf', RING_DUE_MAX, 'LIMIT', 0, 1024)
local pass, stride = {}, {}
local passed = {}     -- tenant -> true when its pass changed
do
  local passes, weights = hmget(K_PASS, active), hmget(K_WEIGHTS, active)
  -- A tenant behind the shard's virtual time had nothing due while others were served (its
  -- accounts waited on their limits or schedules): it starts level, as a tenant joining does,
  -- rather than with the credit of the time it could not use.
  local vt = tonumber(redis.call('HGET', K_STATS, 'v') or '0')
  for i, tenant in ipairs(active) do
    pass[tenant] = tonumber(passes[i] or '0') or 0
    if pass[tenant] < vt then
      pass[tenant] = vt
      passed[tenant] = true
    end
    local w = tonumber(weights[i] or '1') or 1
    if w < 1 then w = 1 end
    stride[tenant] = math.floor(1000000 / w)
  end
end
local last_pass = nil -- the pass of the tenant served last, before its advance
-- Each tenant's due accounts are read from its ring in chunks, in score order. An account
-- visited is re-scored behind every account of the tenant already due, so walking a chunk in
-- order is the same as taking the ring's first account again and again, at a fraction of the
-- calls. Re-scores are written in one ZADD before the tenant's next chunk is read (each account
-- appears once in a chunk).
local chunks = {}     -- tenant -> { accounts, pos, rescored }

local served = {}  -- per visit that leased: { acct, a, first, n }
local ids = {}     -- every leased id, visit by visit
while leased < max_jobs do
  if visits == 0 then
    exhausted = true
    break
  end
  -- The tenant with the lowest pass (the earliest due on ties: `active` is in P:tr order).
  local best = nil
  for i, tenant in ipairs(active) do
    if best == nil or pass[tenant] < pass[active[best]] then best = i end
  end
  if best == nil then break end
  local tenant = active[best]
  local ring = k_ring(tenant)
  local c = chunks[tenant]
  if c == nil then
    c = { accounts = {}, pos = 1, rescored = {} }
    chunks[tenant] = c
  end
  if c.pos > #c.accounts then
    if #c.rescored > 0 then
      call_chunked('ZADD', ring, c.rescored)
      c.rescored = {}
    end
    local want = max_jobs - leased
    if want > 64 then want = 64 end
    c.accounts = redis.call('ZRANGEBYSCORE', ring, '-inf', RING_DUE_MAX, 'LIMIT', 0, want)
    c.pos = 1
  end
  if #c.accounts == 0 then
    table.remove(active, best)  -- nothing of this tenant is due
  else
    visits = visits - 1
    local acct = c.accounts[c.pos]
    c.pos = c.pos + 1
    local a = load_account(acct)
    local t = nil
    if a.team then t = load_team(a.team) end
    if t == nil or a.paused or t.paused or (a.cap > 0 and a.inflight >= a.cap) then
      redis.call('ZREM', ring, acct)
    else
      local want = max_jobs - leased
      if want > visit_cap then want = visit_cap end
      if a.cap > 0 and a.cap - a.inflight < want then want = a.cap - a.inflight end
      local k = gcra_available(a.tat, a.interval, a.tol, NOW, want)
      if k == 0 then
        out[2] = out[2] + 1
        c.rescored[#c.rescored + 1] = place_account(acct, a, t, nil)
        c.rescored[#c.rescored + 1] = acct
      else
        k = gcra_available(t.tat, t.interval, t.tol, NOW, k)
        if k == 0 then
          out[3] = out[3] + 1
          c.rescored[#c.rescored + 1] = place_account(acct, a, t, nil)
          c.rescored[#c.rescored + 1] = acct
        else
          local rk = k_ready(acct)
          local popped = redis.call('LPOP', rk, k)
          if not popped or #popped == 0 then
            redis.call('ZREM', ring, acct)
          else
            local m = #popped
            a.tat = gcra_take_n(a.tat, a.interval, NOW, m)
            t.tat = gcra_take_n(t.tat, t.interval, NOW, m)
            t.dirty = true
            if a.cap > 0 then
              a.inflight = a.inflight + m
              redis.call('HSET', a.key, 'f', a.inflight, 't', fmt(a.tat))
            else
              redis.call('HSET', a.key, 't', fmt(a.tat))
            end
            served[#served + 1] = { acct = acct, a = a, first = #ids + 1, n = m }
            for i = 1, m do ids[#ids + 1] = popped[i] end
            leased = leased + m
            last_pass = pass[tenant]
            pass[tenant] = pass[tenant] + m * stride[tenant]
            passed[tenant] = true
            -- Fewer than asked for: the list is empty (LPOP never returns less otherwise).
            if (a.cap > 0 and a.inflight >= a.cap) or m < k or redis.call('LLEN', rk) == 0 then
              redis.call('ZREM', ring, acct)
            else
              c.rescored[#c.rescored + 1] = place_account(acct, a, t, nil)
              c.rescored[#c.rescored + 1] = acct
            end
          end
        end
      end
    end
  end
end

-- Each tenant visited: its re-scores, its P:tr score moved to its ring's earliest (or the tenant
-- out of P:tr when its ring is empty), and its pass.
for tenant, c in pairs(chunks) do
  local ring = k_ring(tenant)
  if #c.rescored > 0 then call_chunked('ZADD', ring, c.rescored) end
  local first = redis.call('ZRANGE', ring, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('ZREM', K_TENANTS, tenant)
  else
    redis.call('ZADD', K_TENANTS, first[2], tenant)
  end
end
local pass_fields = {}
for tenant in pairs(passed) do
  pass_fields[#pass_fields + 1] = tenant
  pass_fields[#pass_fields + 1] = fmt(pass[tenant])
end
if #pass_fields > 0 then call_chunked('HSET', K_PASS, pass_fields) end
if last_pass ~= nil and last_pass > tonumber(redis.call('HGET', K_STATS, 'v') or '0') then
  redis.call('HSET', K_STATS, 'v', fmt(last_pass))
end

-- The leases: one HMGET for every record; per group one HSET of its ids, and one ZADD for every
-- group. A record carries its kind in its first bytes; nothing else of it is read here.
local records = hmget(K_JOBS, ids)
local groups, cleared = {}, {}
local expires_text = fmt(expires)
local position = {}  -- n -> its decimal text (group positions are small)
local n_leased = 0
for _, v in ipairs(served) do
  local counted = v.a.cap > 0
  local i, last = v.first, v.first + v.n - 1
  while i <= last do
    -- One group: the visit's next jobs of one kind.
    local kind, fields, jobs = nil, {}, {}
    while i <= last do
      local id, rec = ids[i], records[i]
      if rec then
        local k = string.sub(rec, 3, 2 + string.byte(rec, 2))
        if kind == nil then
          kind = k
        elseif k ~= kind then
          break
        end
        local n = #jobs + 1
        local p = position[n]
        if p == nil then
          p = fmt(n)
          position[n] = p
        end
        fields[#fields + 1] = id
        fields[#fields + 1] = p
        jobs[n] = i
        -- The flag is for this attempt only: the stored record drops it.
        if string.byte(rec, 1) == 49 then
          cleared[#cleared + 1] = id
          cleared[#cleared + 1] = '0' .. string.sub(rec, 2)
        end
      else
        -- No record: the id was stale (cannot happen while the layout's rules hold). It is
        -- dropped and its in-flight slot given back.
        free_slot(v.acct, counted)
      end
      i = i + 1
    end
    if kind ~= nil then
      local seq_text = fmt(next_seq())
      local prefix = token_prefix(seq_text, counted, kind, v.acct)
      call_chunked('HSET', k_group(seq_text), fields)
      groups[#groups + 1] = expires_text
      groups[#groups + 1] = prefix
      local o = #out
      out[o + 1] = v.acct
      out[o + 2] = v.a.team
      out[o + 3] = v.a.tenant
      out[o + 4] = prefix
      out[o + 5] = #jobs
      o = o + 5
      for _, j in ipairs(jobs) do
        out[o + 1] = ids[j]
        out[o + 2] = records[j]
        o = o + 2
      end
      n_leased = n_leased + #jobs
    end
  end
end
stat('r', -#ids)
stat('l', n_leased)
if #groups > 0 then call_chunked('ZADD', K_LEASES, groups) end
if #cleared > 0 then call_chunked('HSET', K_JOBS, cleared) end

-- The hint: when could the next call find work?
if leased == max_jobs or exhausted then
  out[1] = 0
else
  local next_ms = -1
  local function consider(ms)
    if next_ms < 0 or ms < next_ms then next_ms = ms end
  end
  local r = redis.call('ZRANGE', K_TENANTS, 0, 0, 'WITHSCORES')
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
