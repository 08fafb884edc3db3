-- Queue state shared by every queue script; prepended (after gcra.lua) to each script at build
-- time, so there is one definition of the layout and of the rules that keep it consistent.
--
-- KEYS[1]: the shard's hash tag, "{hd:s<k>}". Every key a script touches is KEYS[1] plus a
--          suffix, so all of them hash to the same slot (valid on Redis Cluster).
-- ARGV[1]: now in Unix microseconds, or "" to read Redis' TIME (production).
-- Returns: nothing (defines locals used by the script that follows).
-- Complexity: O(1) per helper call unless noted.
--
-- Layout of one shard (P = KEYS[1]):
--   P:ring        ZSET  account -> when it may go next (see ring_score); only accounts that have
--                       ready jobs and are not paused or at their in-flight cap
--   P:r:<acct>    LIST  ready jobs of the account, oldest first, each a packed job record
--   P:ix          SET   ids of every live job (ready, delayed, leased or dead): idempotency
--   P:dl          ZSET  delayed job id -> due time (ms); the record is in P:jd
--   P:jd          HASH  job id -> packed record, for delayed and dead jobs
--   P:ls          ZSET  lease token -> lease expiry (ms); a token names its job (see make_token)
--   P:lj          HASH  lease token -> packed record of the leased job
--   P:dead        ZSET  dead job id -> time it died (ms); the record (with reason) is in P:jd
--   P:dn:<W>:<g>  SET   ids of jobs completed in generation g = floor(now_ms / W) of the
--                       idempotency window W (ms); expires two generations later
--   P:st          HASH  counters: r ready, d delayed, l leased, x dead, q sequence,
--                       e:<kind> enqueued, o:<kind>:<outcome> finished
--   P:a:<acct>    HASH  account: tm team, tn tenant, r per minute, b burst, c max in flight
--                       (0 = no cap), p "1" when paused, f in flight, t GCRA TAT (us)
--   P:t:<team>    HASH  team: r per minute, b burst, p "1" when paused, t GCRA TAT (us),
--                       w wait horizon (us, see place_account)
--   P:ta:<team>   SET   the team's accounts
--
-- A job has no key of its own: its record travels between the structures above, packed with
-- cmsgpack as { id, kind, account, payload, max attempts, enqueued at (ms), attempts that ended
-- in failure or expiry, previous outcome unknown (0/1), [reason, dead at (ms)] }. A 429 or a
-- drain release does not count as an attempt.
--
-- Invariant (no lost wake-ups): an account with ready jobs that is not paused (itself or its
-- team) and is below its in-flight cap is in P:ring. Every path that can make an account
-- eligible (enqueue, promote, ack, nack, reap, release, resume, limit change) calls
-- ring_if_eligible; the lease script removes an account only when it is not eligible.

local P = KEYS[1]
local K_RING = P .. ':ring'
local K_DELAYED = P .. ':dl'
local K_LEASES = P .. ':ls'
local K_DEAD = P .. ':dead'
local K_STATS = P .. ':st'
local K_IDS = P .. ':ix'
local K_JOBS = P .. ':jd'
local K_LEASED = P .. ':lj'

-- Record fields (see the layout above).
local R_ID, R_KIND, R_ACCT, R_PAYLOAD, R_MAX, R_ENQ, R_FAILED, R_UNKNOWN, R_REASON, R_DEAD =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10
local pack, unpack_record = cmsgpack.pack, cmsgpack.unpack

local function k_ready(acct) return P .. ':r:' .. acct end
local function k_acct(acct) return P .. ':a:' .. acct end
local function k_team(team) return P .. ':t:' .. team end
local function k_team_accts(team) return P .. ':ta:' .. team end

local function fmt(n) return string.format('%d', n) end

local NOW
if ARGV[1] ~= nil and ARGV[1] ~= '' then
  NOW = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local NOW_MS = math.floor(NOW / 1000)

-- Counter updates are summed in Lua and written once, at the end of the script.
local stat_delta = {}
local function stat(field, d) stat_delta[field] = (stat_delta[field] or 0) + d end

-- A per-shard sequence: ring tie-breaks and lease tokens. Loaded once, saved once.
local seq = nil
local function next_seq()
  if seq == nil then seq = tonumber(redis.call('HGET', K_STATS, 'q') or '0') end
  seq = seq + 1
  return seq
end

-- Ring scores are (ms since 2020-09-13) * 4096 + (sequence mod 4096): ordered by time, and at
-- equal times by when the account was placed, so the account that has waited longest goes
-- first (never the lexicographically smaller id). Fits in 2^53 until the year 2089.
local RING_EPOCH_MS = 1600000000000
local RING_NOW_BASE = (NOW_MS - RING_EPOCH_MS) * 4096
local function ring_score(at_us)
  if at_us <= NOW then return RING_NOW_BASE + next_seq() % 4096 end
  local ms = math.ceil(at_us / 1000) - RING_EPOCH_MS
  if ms < 0 then ms = 0 end
  return ms * 4096 + next_seq() % 4096
end
local RING_DUE_MAX = fmt((NOW_MS - RING_EPOCH_MS) * 4096 + 4095)
local function ring_time_ms(score) return math.floor(score / 4096) + RING_EPOCH_MS end

local function load_account(acct)
  local key = k_acct(acct)
  local v = redis.call('HMGET', key, 'tm', 'r', 'b', 'c', 'p', 'f', 't', 'tn')
  local a = {
    key = key,
    team = v[1], rate = tonumber(v[2] or '0'), burst = tonumber(v[3] or '1'),
    cap = tonumber(v[4] or '0'), paused = v[5] == '1', inflight = tonumber(v[6] or '0'),
    tat = tonumber(v[7] or '0'), tenant = v[8] or ''
  }
  a.interval = gcra_interval(a.rate)
  a.tol = gcra_tolerance(a.interval, a.burst)
  return a
end

-- Teams are cached for the script's duration and written back by save_teams().
local teams = {}
local function load_team(team)
  local t = teams[team]
  if t then return t end
  local v = redis.call('HMGET', k_team(team), 'r', 'b', 'p', 't', 'w')
  t = {
    id = team, rate = tonumber(v[1] or '0'), burst = tonumber(v[2] or '1'),
    paused = v[3] == '1', tat = tonumber(v[4] or '0'), wait = tonumber(v[5] or '0'),
    dirty = false, naccts = nil
  }
  t.interval = gcra_interval(t.rate)
  t.tol = gcra_tolerance(t.interval, t.burst)
  teams[team] = t
  return t
end

local function save_teams()
  for team, t in pairs(teams) do
    if t.dirty then redis.call('HSET', k_team(team), 't', fmt(t.tat), 'w', fmt(t.wait)) end
  end
end

-- Puts an account in the ring at the earliest time both its bucket and its team's bucket have a
-- token (as far as is known now). When the team is the binding constraint, the account takes the
-- next slot of the team's "wait horizon" (one team interval apart), so accounts blocked by one
-- team come back one per team token instead of all at once. The horizon never runs further
-- than (accounts in the team) intervals ahead. Returns the ring score; `write`: "lt" to ZADD it
-- keeping an earlier score already in the ring, "set" to ZADD it, nil to let the caller write it.
local function place_account(acct, a, t, write)
  local at = gcra_allow_at(a.tat, a.tol, NOW)
  local t_allow = gcra_allow_at(t.tat, t.tol, NOW)
  if t_allow > NOW and t_allow >= at then
    local slot = t_allow
    if t.wait > slot then
      if t.naccts == nil then t.naccts = redis.call('SCARD', k_team_accts(t.id)) end
      local limit = t_allow + t.interval * t.naccts
      if t.wait < limit then slot = t.wait else slot = limit end
    end
    t.wait = slot + t.interval
    t.dirty = true
    at = slot
  elseif t_allow > at then
    at = t_allow
  end
  local score = fmt(ring_score(at))
  if write == 'lt' then
    redis.call('ZADD', K_RING, 'LT', score, acct)
  elseif write == 'set' then
    redis.call('ZADD', K_RING, score, acct)
  end
  return score
end

-- Writes score/member pairs to a ZSET with as few calls as Lua's stack allows.
local function zadd_pairs(key, pairs)
  for i = 1, #pairs, 1000 do
    redis.call('ZADD', key, unpack(pairs, i, math.min(i + 999, #pairs)))
  end
end

-- Puts the account back in the ring if it is eligible (see the invariant above). `has_ready`:
-- the caller knows the account has ready jobs.
local function ring_if_eligible(acct, has_ready)
  local a = load_account(acct)
  if a.team == nil or a.paused then return end
  if a.cap > 0 and a.inflight >= a.cap then return end
  if not has_ready and redis.call('LLEN', k_ready(acct)) == 0 then return end
  local t = load_team(a.team)
  if t.paused then return end
  place_account(acct, a, t, 'lt')
end

-- Cheaper form for paths that only freed an in-flight slot: most accounts are still in the ring.
local function rering(acct)
  if redis.call('ZSCORE', K_RING, acct) == false then ring_if_eligible(acct, false) end
end

-- Completed ids are kept by generation (one SET per window-length span of time): an id completed
-- in the current or the previous generation is a duplicate, so every id completed within the
-- window is (and some up to two windows old). Adding is O(1) and old generations expire whole.
local function done_key(window_ms, generation)
  return P .. ':dn:' .. fmt(window_ms) .. ':' .. fmt(generation)
end

local function mark_done(ids, window_ms)
  if window_ms <= 0 or #ids == 0 then return end
  local g = math.floor(NOW_MS / window_ms)
  local key = done_key(window_ms, g)
  for i = 1, #ids, 1000 do
    redis.call('SADD', key, unpack(ids, i, math.min(i + 999, #ids)))
  end
  -- Relative to the script's now (explicit in tests), not to Redis' clock.
  redis.call('PEXPIRE', key, fmt((g + 2) * window_ms + 1000 - NOW_MS))
end

-- For each id: true when it completed within the window (see mark_done).
local function completed(ids, window_ms)
  local out = {}
  if window_ms <= 0 or #ids == 0 then return out end
  local g = math.floor(NOW_MS / window_ms)
  for _, generation in ipairs({ g, g - 1 }) do
    local found = redis.call('SMISMEMBER', done_key(window_ms, generation), unpack(ids))
    for i, v in ipairs(found) do
      if v == 1 then out[i] = true end
    end
  end
  return out
end

-- Appends packed records to accounts' ready lists, one RPUSH per account, and rings each account
-- whose list was empty (in order of first appearance) if eligible. `order` lists the accounts,
-- `ready` maps each to its records.
local function push_ready(order, ready)
  for _, acct in ipairs(order) do
    local list = ready[acct]
    local len = 0
    for i = 1, #list, 1000 do
      len = redis.call('RPUSH', k_ready(acct), unpack(list, i, math.min(i + 999, #list)))
    end
    stat('r', #list)
    if len == #list then ring_if_eligible(acct, true) end
  end
end

-- Enqueues jobs. `jobs` is a list of {id, kind, account, team, tenant, payload, max_attempts,
-- delay_ms}; returns one result per job: 1 (enqueued), 0 (duplicate: the id is queued, delayed,
-- leased, dead, or completed within `window_ms`) or -1 (the account is registered to another
-- team). Ready jobs are appended to their accounts' lists in order, one RPUSH per account, and an
-- account whose list was empty joins the ring (in order of first appearance) if eligible.
local function enqueue_jobs(jobs, window_ms)
  local out = {}
  if #jobs == 0 then return out end
  local ids = {}
  for i, j in ipairs(jobs) do ids[i] = j[1] end
  local done = completed(ids, window_ms)
  local live = redis.call('SMISMEMBER', K_IDS, unpack(ids))
  local taken = {}           -- ids accepted by this call
  local teams_of = {}        -- account -> registered team (this call's cache)
  local ready, order = {}, {}
  local added, delayed, records = {}, {}, {}
  for i, j in ipairs(jobs) do
    local id, kind, acct, team = j[1], j[2], j[3], j[4]
    local result = 1
    if done[i] or live[i] == 1 or taken[id] then
      result = 0
    else
      local current = teams_of[acct]
      if current == nil then
        current = redis.call('HGET', k_acct(acct), 'tm')
        if not current then
          redis.call('HSET', k_acct(acct), 'tm', team, 'tn', j[5])
          redis.call('SADD', k_team_accts(team), acct)
          current = team
        end
        teams_of[acct] = current
      end
      if current ~= team then result = -1 end
    end
    if result == 1 then
      taken[id] = true
      added[#added + 1] = id
      local record = pack({ id, kind, acct, j[6], tonumber(j[7]), NOW_MS, 0, 0 })
      if j[8] > 0 then
        delayed[#delayed + 1] = fmt(NOW_MS + j[8])
        delayed[#delayed + 1] = id
        records[#records + 1] = id
        records[#records + 1] = record
        stat('d', 1)
      else
        local list = ready[acct]
        if list == nil then
          list = {}
          ready[acct] = list
          order[#order + 1] = acct
        end
        list[#list + 1] = record
      end
      stat('e:' .. kind, 1)
    end
    out[i] = result
  end
  for i = 1, #added, 1000 do
    redis.call('SADD', K_IDS, unpack(added, i, math.min(i + 999, #added)))
  end
  if #delayed > 0 then
    zadd_pairs(K_DELAYED, delayed)
    for i = 1, #records, 1000 do
      redis.call('HSET', K_JOBS, unpack(records, i, math.min(i + 999, #records)))
    end
  end
  push_ready(order, ready)
  return out
end

-- Moves a job (its unpacked record) to the dead letters, with the reason.
local function dead_letter(r, reason, attempts)
  r[R_FAILED] = attempts
  r[R_REASON] = reason
  r[R_DEAD] = NOW_MS
  redis.call('HSET', K_JOBS, r[R_ID], pack(r))
  redis.call('ZADD', K_DEAD, fmt(NOW_MS), r[R_ID])
  stat('x', 1)
  stat('o:' .. r[R_KIND] .. ':dead', 1)
end

-- A lease token is the job's entry in P:ls, so finishing a job checks and ends its lease in one
-- ZREM, and the token carries what finishing needs without reading the job:
--   "<seq>:<counted>:<#kind>:<#account>:" .. kind .. account .. id
-- seq is the shard sequence (unique); counted is "1" when the lease took an in-flight slot of
-- an account with a cap (only those are counted, so uncapped accounts cost nothing on ack; a cap
-- set while uncounted leases are in flight bounds the leases taken after it).
local function make_token(id, kind, acct, counted)
  local c = '0'
  if counted then c = '1' end
  return fmt(next_seq()) .. ':' .. c .. ':' .. #kind .. ':' .. #acct .. ':' .. kind .. acct .. id
end

-- Returns id, account, kind, counted from a token; nil when it is malformed.
local function parse_token(token)
  local c, kl, al, at = string.match(token, '^%d+:([01]):(%d+):(%d+):()')
  if not c then return nil end
  kl = tonumber(kl)
  al = tonumber(al)
  return string.sub(token, at + kl + al), string.sub(token, at + kl, at + kl + al - 1),
         string.sub(token, at, at + kl - 1), c == '1'
end

-- Ends the lease `token` of job `id` if it is current: returns account, kind, counted and the
-- job's unpacked record; or nil when fenced (the lease was reaped, or the job finished or never
-- existed; nothing changes). A lease past its expiry stays valid until the reaper takes it:
-- until then nobody else holds the job, so its holder may still finish it.
local function take_lease(id, token)
  local tid, acct, kind, counted = parse_token(token)
  if tid ~= id then return nil end
  if redis.call('ZREM', K_LEASES, token) == 0 then return nil end
  stat('l', -1)
  local record = redis.call('HGET', K_LEASED, token)
  redis.call('HDEL', K_LEASED, token)
  if not record then return nil end
  return acct, kind, counted, unpack_record(record)
end

-- Frees the in-flight slot a lease held.
local function free_slot(acct, counted)
  if counted then redis.call('HINCRBY', k_acct(acct), 'f', -1) end
end

-- Puts a job (its unpacked record) back at the head of its account's ready list (it was there
-- before it was leased).
local function return_to_ready(r)
  redis.call('LPUSH', k_ready(r[R_ACCT]), pack(r))
  stat('r', 1)
  ring_if_eligible(r[R_ACCT], true)
end

-- Returns up to `limit` expired leases to their accounts (at the head, flagged outcome-unknown),
-- or to the dead letters when that was the last attempt. O(limit log N).
local function reap(limit)
  local tokens = redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', '(' .. fmt(NOW_MS), 'LIMIT', 0, limit)
  for _, token in ipairs(tokens) do
    redis.call('ZREM', K_LEASES, token)
    stat('l', -1)
    local id, acct, kind, counted = parse_token(token)
    local record = redis.call('HGET', K_LEASED, token)
    redis.call('HDEL', K_LEASED, token)
    if id then free_slot(acct, counted) end
    if record then
      local r = unpack_record(record)
      stat('o:' .. kind .. ':expired', 1)
      local attempts = r[R_FAILED] + 1
      if attempts >= r[R_MAX] then
        dead_letter(r, 'lease expired on the last attempt; outcome unknown', attempts)
        if counted then rering(acct) end
      else
        r[R_FAILED] = attempts
        r[R_UNKNOWN] = 1
        return_to_ready(r)
      end
    end
  end
  return #tokens
end

-- Moves up to `limit` due delayed jobs to the tail of their accounts' ready lists.
local function promote(limit)
  local ids = redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', fmt(NOW_MS), 'LIMIT', 0, limit)
  if #ids == 0 then return 0 end
  redis.call('ZREM', K_DELAYED, unpack(ids))
  local records = redis.call('HMGET', K_JOBS, unpack(ids))
  redis.call('HDEL', K_JOBS, unpack(ids))
  stat('d', -#ids)
  local ready, order = {}, {}
  for _, record in ipairs(records) do
    if record then
      local acct = unpack_record(record)[R_ACCT]
      local list = ready[acct]
      if list == nil then
        list = {}
        ready[acct] = list
        order[#order + 1] = acct
      end
      list[#list + 1] = record
    end
  end
  push_ready(order, ready)
  return #ids
end

-- Writes the summed counters, the sequence and dirty team buckets. Every script ends with it.
local function finish()
  for field, d in pairs(stat_delta) do
    if d ~= 0 then redis.call('HINCRBY', K_STATS, field, d) end
  end
  if seq ~= nil then redis.call('HSET', K_STATS, 'q', fmt(seq)) end
  save_teams()
end
