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
--   P:tr          ZSET  tenant -> a time no later than the earliest score in its ring (ring_score
--                       units): the tenants that may have an account ready to go
--   P:ring:<tn>   ZSET  the tenant's ring: account -> when it may go next (see ring_score); only
--                       accounts that have ready jobs and are not paused or at their in-flight cap
--   P:tp          HASH  tenant -> pass: its virtual time, jobs leased x (1e6 / weight), for
--                       weighted fairness between tenants (lease.lua)
--   P:tw          HASH  tenant -> weight (1..1000; absent = 1)
--   P:r:<acct>    LIST  ids of the account's ready jobs, oldest first
--   P:jd          HASH  job id -> record (see make_record), for every live job: ready, delayed,
--                       leased or dead. Also the idempotency check for live ids
--   P:dl          ZSET  delayed job id -> due time (ms)
--   P:ls          ZSET  lease group prefix -> lease expiry (ms) of the group (see token_prefix)
--   P:lg:<seq>    HASH  a lease group: job id -> its position in the group, for every job still
--                       held under the group's leases
--   P:dead        ZSET  dead job id -> time it died (ms); the record carries the reason
--   P:dq          LIST  ids of jobs dead-lettered since a worker last took them (take_dead.lua),
--                       oldest first; the newest DEAD_NOTICES_MAX at most
--   P:dqt         ZSET  dead job ids a worker took (take_dead.lua) -> end of the claim (ms): offered
--                       again then unless the worker said it was done with them
--   P:dn:<W>:<g>  SET   ids of jobs completed in generation g = floor(now_ms / W) of the
--                       idempotency window W (ms); expires two generations later
--   P:st          HASH  counters: r ready, d delayed, l leased, x dead, q sequence, v the
--                       shard's virtual time (the pass of the tenant served last),
--                       e:<kind> enqueued, o:<kind>:<outcome> finished
--   P:a:<acct>    HASH  account: tm team, tn tenant, r per minute, b burst, c max in flight
--                       (0 = no cap), p "1" when paused, f in flight, t GCRA TAT (us)
--   P:t:<team>    HASH  team: r per minute, b burst, p "1" when paused, t GCRA TAT (us),
--                       w wait horizon (us, see place_account)
--   P:ta:<team>   SET   the team's accounts
--
-- A job's record stays in P:jd from enqueue until the job completes; the ready lists, the delayed
-- and dead sets and the lease groups hold only its id, so leasing and acking never copy or
-- re-encode it. The record is one string (make_record):
--   byte 1      "1" when the previous attempt's outcome is unknown, else "0"
--   byte 2      length of the kind (1..255), then the kind
--   next byte   length of the account (1..255), then the account
--   text        failed ":" max ":" ready_ms ":" dead_ms ":" reason_length ":" reason
--   the rest    the payload, binary
-- failed counts attempts that ended in failure or expiry (a 429, a drain release or a deferral does not);
-- ready_ms is when the job was or will be ready to run: its enqueue, the end of its delay (a
-- retry's backoff included), or its return to ready from a lease (reaped, released, a 429), so
-- that the oldest ready age counts the wait for a turn only;
-- dead_ms is 0 unless the job is dead; reason is the last failure's. The lease script reads only
-- bytes 1..2+#kind and returns the record whole; herald/queue/record.h decodes it in C++.
--
-- Invariant (no lost wake-ups): an account with ready jobs that is not paused (itself or its
-- team) and is below its in-flight cap is in its tenant's ring, and the tenant is in P:tr with a
-- score no later than the account's. Every path that can make an account eligible (enqueue,
-- promote, ack, nack, reap, release, resume, limit change) calls ring_if_eligible; the lease
-- script removes an account only when it is not eligible, and a tenant only when its ring is
-- empty. (P:ring, the one ring of earlier versions, is drained into the tenants' rings by the
-- lease script.)

local P = KEYS[1]
local K_LEGACY_RING = P .. ':ring'
local K_TENANTS = P .. ':tr'
local K_PASS = P .. ':tp'
local K_WEIGHTS = P .. ':tw'
local K_DELAYED = P .. ':dl'
local K_LEASES = P .. ':ls'
local K_DEAD = P .. ':dead'
local K_DEAD_NOTICES = P .. ':dq'
local K_DEAD_TAKEN = P .. ':dqt'
local DEAD_NOTICES_MAX = 100000
local K_STATS = P .. ':st'
local K_JOBS = P .. ':jd'

local function k_ready(acct) return P .. ':r:' .. acct end
local function k_acct(acct) return P .. ':a:' .. acct end
local function k_team(team) return P .. ':t:' .. team end
local function k_team_accts(team) return P .. ':ta:' .. team end
local function k_ring(tenant) return P .. ':ring:' .. tenant end

local function fmt(n) return string.format('%d', n) end

-- Holds `team` back until `until_us` (an upstream 429's Retry-After), and remembers that horizon
-- in its hash ('pb') so that a change of its limits keeps it. Returns the bucket's new TAT.
local function push_back_team(team, tat, tolerance, until_us)
  local pb = tonumber(redis.call('HGET', k_team(team), 'pb') or '0')
  if until_us > pb then redis.call('HSET', k_team(team), 'pb', fmt(until_us)) end
  return gcra_push_back(tat, tolerance, until_us)
end

local NOW
if ARGV[1] ~= nil and ARGV[1] ~= '' then
  NOW = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local NOW_MS = math.floor(NOW / 1000)
local NOW_MS_TEXT = fmt(NOW_MS)

-- Runs `cmd key items...` in as few calls as Lua's stack allows (1000 items per call; pairs
-- stay whole). Returns the replies of the calls, concatenated when they are arrays.
local function call_chunked(cmd, key, items)
  if #items <= 1000 then return redis.call(cmd, key, unpack(items)) end
  local out = {}
  for i = 1, #items, 1000 do
    local r = redis.call(cmd, key, unpack(items, i, math.min(i + 999, #items)))
    if type(r) == 'table' then
      for _, v in ipairs(r) do out[#out + 1] = v end
    end
  end
  return out
end

-- Values of `fields` of a hash (false where missing), in order; `fields` may be empty.
local function hmget(key, fields)
  if #fields == 0 then return {} end
  return call_chunked('HMGET', key, fields)
end

-- Job records (see the layout above).
local function make_record(unknown, kind, acct, failed, max, ready_ms, dead_ms, reason, payload)
  local u = '0'
  if unknown then u = '1' end
  return u .. string.char(#kind) .. kind .. string.char(#acct) .. acct .. fmt(failed) .. ':' ..
         fmt(max) .. ':' .. fmt(ready_ms) .. ':' .. fmt(dead_ms) .. ':' .. #reason .. ':' .. reason ..
         payload
end

-- The account of a record, without decoding the rest.
local function record_account(rec)
  local at = 4 + string.byte(rec, 2)
  return string.sub(rec, at, at + string.byte(rec, at - 1) - 1)
end

-- Decodes a record into a table (fields as make_record's parameters); nil when malformed.
local function read_record(rec)
  local kl = string.byte(rec, 2)
  if not kl then return nil end
  local al = string.byte(rec, 3 + kl)
  if not al then return nil end
  local failed, max, ready, dead, rl, at =
    string.match(rec, '^(%d+):(%d+):(%d+):(%d+):(%d+):()', 4 + kl + al)
  if not at then return nil end
  rl = tonumber(rl)
  return {
    unknown = string.byte(rec, 1) == 49, kind = string.sub(rec, 3, 2 + kl),
    acct = string.sub(rec, 4 + kl, 3 + kl + al), failed = tonumber(failed), max = tonumber(max),
    ready = tonumber(ready), dead = tonumber(dead), reason = string.sub(rec, at, at + rl - 1),
    payload = string.sub(rec, at + rl)
  }
end

local function write_record(r)
  return make_record(r.unknown, r.kind, r.acct, r.failed, r.max, r.ready, r.dead, r.reason,
                     r.payload)
end

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

-- A tenant that had no account in P:tr starts level with the tenant served last: not ahead of
-- the tenants waiting (with a pass left low by an idle spell), not behind them.
local function tenant_joined(tenant)
  local vt = tonumber(redis.call('HGET', K_STATS, 'v') or '0')
  local pass = tonumber(redis.call('HGET', K_PASS, tenant) or '0')
  if pass < vt then redis.call('HSET', K_PASS, tenant, fmt(vt)) end
end

-- Rings `acct` of `tenant` at `score`: `mode` "lt" keeps an earlier score already in the ring,
-- "set" replaces it. The tenant's P:tr score only ever moves earlier here (the lease script moves
-- it later when it finds the ring's earliest account later).
local function ring_add(tenant, acct, score, mode)
  if mode == 'lt' then
    redis.call('ZADD', k_ring(tenant), 'LT', score, acct)
  else
    redis.call('ZADD', k_ring(tenant), score, acct)
  end
  if redis.call('ZADD', K_TENANTS, 'LT', score, tenant) == 1 then tenant_joined(tenant) end
end

-- Takes an account out of its tenant's ring (its tenant stays in P:tr until a lease finds the
-- ring empty).
local function ring_remove(tenant, acct) redis.call('ZREM', k_ring(tenant), acct) end

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
  if write ~= nil then ring_add(a.tenant, acct, score, write) end
  return score
end

-- Puts the account back in the ring if it is eligible (see the invariant above). `has_ready`:
-- the caller knows the account has ready jobs. `a`: the account as load_account read it in this
-- script, unchanged since, or nil to read it here.
local function ring_if_eligible(acct, has_ready, a)
  a = a or load_account(acct)
  if a.team == nil or a.paused then return end
  if a.cap > 0 and a.inflight >= a.cap then return end
  if not has_ready and redis.call('LLEN', k_ready(acct)) == 0 then return end
  local t = load_team(a.team)
  if t.paused then return end
  place_account(acct, a, t, 'lt')
end

-- Cheaper form for paths that only freed an in-flight slot: most accounts are still in the ring.
local function rering(acct)
  local tenant = redis.call('HGET', k_acct(acct), 'tn') or ''
  if redis.call('ZSCORE', k_ring(tenant), acct) == false then ring_if_eligible(acct, false) end
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
  call_chunked('SADD', key, ids)
  -- Relative to the script's now (explicit in tests), not to Redis' clock.
  redis.call('PEXPIRE', key, fmt((g + 2) * window_ms + 1000 - NOW_MS))
end

-- For each id: true when it completed within the window (see mark_done).
local function completed(ids, window_ms)
  local out = {}
  if window_ms <= 0 or #ids == 0 then return out end
  local g = math.floor(NOW_MS / window_ms)
  for _, generation in ipairs({ g, g - 1 }) do
    local found = call_chunked('SMISMEMBER', done_key(window_ms, generation), ids)
    for i, v in ipairs(found) do
      if v == 1 then out[i] = true end
    end
  end
  return out
end

-- Groups ready ids by account for push_ready: appends `id` to `ready[acct]` and notes each
-- account's first appearance in `order`.
local function add_ready(order, ready, acct, id)
  local list = ready[acct]
  if list == nil then
    list = {}
    ready[acct] = list
    order[#order + 1] = acct
  end
  list[#list + 1] = id
end

-- Appends job ids to accounts' ready lists, one RPUSH per account, and rings each account whose
-- list was empty (in order of first appearance) if eligible. `order` lists the accounts, `ready`
-- maps each to its ids; `accounts` (may be nil) maps accounts to what load_account read of them.
local function push_ready(order, ready, accounts)
  for _, acct in ipairs(order) do
    local list = ready[acct]
    local len = 0
    for i = 1, #list, 1000 do
      len = redis.call('RPUSH', k_ready(acct), unpack(list, i, math.min(i + 999, #list)))
    end
    stat('r', #list)
    if len == #list then ring_if_eligible(acct, true, accounts and accounts[acct]) end
  end
end

-- Enqueues jobs. `jobs` is a list of {id, kind, account, team, tenant, payload, max_attempts,
-- delay_ms}; returns one result per job: 1 (enqueued), 0 (duplicate: the id is queued, delayed,
-- leased, dead, or completed within `window_ms`) or -1 (the account is registered to another
-- team). Records go to P:jd in one HSET; ready ids are appended to their accounts' lists in
-- order, one RPUSH per account, and an account whose list was empty joins the ring (in order of
-- first appearance) if eligible.
local function enqueue_jobs(jobs, window_ms)
  local out = {}
  if #jobs == 0 then return out end
  local ids = {}
  for i, j in ipairs(jobs) do ids[i] = j[1] end
  local done = completed(ids, window_ms)
  -- Live ids have a record. New ids (the usual case) come back as nil, so this costs no copying.
  local live = hmget(K_JOBS, ids)
  local taken = {}           -- ids accepted by this call
  local accounts = {}        -- account -> load_account (this call's cache)
  local ready, order = {}, {}
  local delayed, records = {}, {}
  for i, j in ipairs(jobs) do
    local id, kind, acct, team = j[1], j[2], j[3], j[4]
    local result = 1
    if done[i] or live[i] or taken[id] then
      result = 0
    else
      local a = accounts[acct]
      if a == nil then
        a = load_account(acct)
        if not a.team then
          redis.call('HSET', a.key, 'tm', team, 'tn', j[5])
          redis.call('SADD', k_team_accts(team), acct)
          a.team, a.tenant = team, j[5]
        end
        accounts[acct] = a
      end
      if a.team ~= team then result = -1 end
    end
    if result == 1 then
      taken[id] = true
      records[#records + 1] = id
      local ready_ms = NOW_MS_TEXT
      if j[8] > 0 then ready_ms = fmt(NOW_MS + j[8]) end
      records[#records + 1] = '0' .. string.char(#kind) .. kind .. string.char(#acct) .. acct ..
                              '0:' .. fmt(tonumber(j[7])) .. ':' .. ready_ms .. ':0:0:' .. j[6]
      if j[8] > 0 then
        delayed[#delayed + 1] = ready_ms
        delayed[#delayed + 1] = id
        stat('d', 1)
      else
        add_ready(order, ready, acct, id)
      end
      stat('e:' .. kind, 1)
    end
    out[i] = result
  end
  if #records > 0 then call_chunked('HSET', K_JOBS, records) end
  if #delayed > 0 then call_chunked('ZADD', K_DELAYED, delayed) end
  push_ready(order, ready, accounts)
  return out
end

-- Moves job `id` (its decoded record) to the dead letters, with the reason.
local function dead_letter(id, r, reason, attempts)
  r.failed = attempts
  r.reason = reason
  r.dead = NOW_MS
  redis.call('HSET', K_JOBS, id, write_record(r))
  redis.call('ZADD', K_DEAD, NOW_MS_TEXT, id)
  if redis.call('RPUSH', K_DEAD_NOTICES, id) > DEAD_NOTICES_MAX then
    redis.call('LTRIM', K_DEAD_NOTICES, -DEAD_NOTICES_MAX, -1)
  end
  stat('x', 1)
  stat('o:' .. r.kind .. ':dead', 1)
end

-- Leases are kept by group: the jobs of one kind leased in one account visit form a group, with
-- one entry in P:ls (its prefix, scored by the group's expiry) and one small hash P:lg:<seq> of
-- the ids still held. A job's lease token is its group's prefix followed by its id:
--   prefix = "<seq>:<counted>:<#kind>:<#account>:" .. kind .. account,   token = prefix .. id
-- seq is the shard sequence, taken once per group, so a token is never reused; counted is "1"
-- when the leases took in-flight slots of an account with a cap (only those are counted, so
-- uncapped accounts cost nothing on ack; a cap set while uncounted leases are in flight bounds
-- the leases taken after it). A token is current while its id is in its group's hash: finishing
-- a job removes it there (fencing every older or reaped token), and the group's P:ls entry goes
-- with its last job. The jobs of a group share one expiry: they were leased by one call, so one
-- worker holds them all, and extending any of them (heartbeat) extends the group.
local function token_prefix(seq_text, counted, kind, acct)
  local c = '0'
  if counted then c = '1' end
  return seq_text .. ':' .. c .. ':' .. #kind .. ':' .. #acct .. ':' .. kind .. acct
end

local function k_group(seq) return P .. ':lg:' .. seq end

-- Returns seq, account, kind, counted of a group prefix; nil when it is malformed.
local function parse_prefix(prefix)
  local seq_text, c, kl, al, at = string.match(prefix, '^(%d+):([01]):(%d+):(%d+):()')
  if not seq_text then return nil end
  kl = tonumber(kl)
  al = tonumber(al)
  if #prefix ~= at + kl + al - 1 then return nil end
  return seq_text, string.sub(prefix, at + kl, at + kl + al - 1), string.sub(prefix, at, at + kl - 1),
         c == '1'
end

-- Returns prefix, id, seq, account, kind, counted of a token; nil when it is malformed.
local function split_token(token)
  local seq_text, c, kl, al, at = string.match(token, '^(%d+):([01]):(%d+):(%d+):()')
  if not seq_text then return nil end
  kl = tonumber(kl)
  al = tonumber(al)
  local id_at = at + kl + al
  if id_at > #token then return nil end
  return string.sub(token, 1, id_at - 1), string.sub(token, id_at), seq_text,
         string.sub(token, at + kl, id_at - 1), string.sub(token, at, at + kl - 1), c == '1'
end

-- Removes `ids` (all held in group `seq`) from the group, and the group from P:ls when that was
-- its last job.
local function release_from_group(prefix, seq_text, ids)
  local key = k_group(seq_text)
  call_chunked('HDEL', key, ids)
  if redis.call('EXISTS', key) == 0 then redis.call('ZREM', K_LEASES, prefix) end
end

-- Ends the lease `token` of job `id` if it is current: returns account, kind, counted and the
-- job's decoded record; or nil when fenced (the lease was reaped, or the job finished or never
-- existed; nothing changes). A lease past its expiry stays valid until the reaper takes it:
-- until then nobody else holds the job, so its holder may still finish it.
local function take_lease(id, token)
  local prefix, tid, seq_text, acct, kind, counted = split_token(token)
  if not prefix or tid ~= id then return nil end
  if redis.call('HEXISTS', k_group(seq_text), id) == 0 then return nil end
  release_from_group(prefix, seq_text, { id })
  stat('l', -1)
  local rec = redis.call('HGET', K_JOBS, id)
  if not rec then return nil end
  local r = read_record(rec)
  if not r then return nil end
  return acct, kind, counted, r
end

-- Frees in-flight slots that leases held.
local function free_slot(acct, counted, n)
  if counted then redis.call('HINCRBY', k_acct(acct), 'f', -(n or 1)) end
end

-- Puts job `id` back at the head of its account's ready list (it was there before it was
-- leased).
local function return_to_ready(id, acct)
  redis.call('LPUSH', k_ready(acct), id)
  stat('r', 1)
  ring_if_eligible(acct, true)
end

-- Returns the jobs of up to `limit` expired lease groups to their accounts (at the head, in their
-- old order, flagged outcome-unknown), or to the dead letters when that was the last attempt.
-- Returns the number of jobs reaped. O(limit * V log N) for groups of up to V jobs.
local function reap(limit)
  local prefixes =
    redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', '(' .. NOW_MS_TEXT, 'LIMIT', 0, limit)
  if #prefixes == 0 then return 0 end
  call_chunked('ZREM', K_LEASES, prefixes)
  local reaped = 0
  for _, prefix in ipairs(prefixes) do
    local seq_text, acct, kind, counted = parse_prefix(prefix)
    if seq_text then
      local key = k_group(seq_text)
      local held = redis.call('HGETALL', key)
      redis.call('DEL', key)
      local order = {}
      for i = 1, #held, 2 do order[#order + 1] = { tonumber(held[i + 1]), held[i] } end
      table.sort(order, function(x, y) return x[1] < y[1] end)
      local ids = {}
      for i, v in ipairs(order) do ids[i] = v[2] end
      reaped = reaped + #ids
      stat('l', -#ids)
      free_slot(acct, counted, #ids)
      local records = hmget(K_JOBS, ids)
      local back, updated = {}, {}
      for i, id in ipairs(ids) do
        local r = records[i] and read_record(records[i])
        if r then
          stat('o:' .. kind .. ':expired', 1)
          local attempts = r.failed + 1
          if attempts >= r.max then
            dead_letter(id, r, 'lease expired on the last attempt; outcome unknown', attempts)
          else
            r.failed = attempts
            r.unknown = true
            r.ready = NOW_MS
            updated[#updated + 1] = id
            updated[#updated + 1] = write_record(r)
            back[#back + 1] = id
          end
        end
      end
      if #updated > 0 then call_chunked('HSET', K_JOBS, updated) end
      if #back > 0 then
        -- LPUSH puts its last argument first: push newest to oldest.
        local reversed = {}
        for i = #back, 1, -1 do reversed[#reversed + 1] = back[i] end
        call_chunked('LPUSH', k_ready(acct), reversed)
        stat('r', #back)
        ring_if_eligible(acct, true)
      elseif counted then
        rering(acct)
      end
    end
  end
  return reaped
end

-- Moves up to `limit` due delayed jobs to the tail of their accounts' ready lists.
local function promote(limit)
  local ids = redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', NOW_MS_TEXT, 'LIMIT', 0, limit)
  if #ids == 0 then return 0 end
  redis.call('ZREM', K_DELAYED, unpack(ids))
  local records = hmget(K_JOBS, ids)
  stat('d', -#ids)
  local ready, order = {}, {}
  for i, id in ipairs(ids) do
    if records[i] then add_ready(order, ready, record_account(records[i]), id) end
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
