-- configure: limits, registration and pause/resume of accounts and teams, at run time.
--
-- KEYS[1]: shard hash tag "{hd:s<k>}" (every key used is built from it; see common.lua)
-- ARGV[1]: now (Unix us) or "" for Redis TIME
-- ARGV[2]: operation, then its arguments:
--   "account", account, team, tenant, per_minute, burst, max_in_flight, move
--        registers the account (or updates it) and sets its limits; its team changes only when
--        move is "1" (it leaves the old team's set, and its jobs wait on the new team's bucket)
--   "team", team, per_minute, burst      sets the team's limits
--   "pause_account", account   |  "resume_account", account
--   "pause_team", team         |  "resume_team", team
--   "tenant_weight", tenant, weight      sets the tenant's share of the shard (1..1000)
--   "push_back", team, ms                no token of the team's before now + ms (an upstream 429's
--        Retry-After met outside a job)
--   "take", team, account ("" for none)  takes one token from the team's bucket and the
--        account's, for an upstream call made outside a job, so the limits count every call
-- Returns: { code, team }: {1, ""} done; {-1, team} when an "account" operation without move
--          would change the account's team (it belongs to `team`; nothing changes).
--          "take" returns { code, wait }: {1, 0} taken; {0, wait_us} a bucket is empty, nothing
--          taken, both would have a token in wait_us as far as is known now; {-2, 0} the team or
--          account is paused; {-3, 0} the team or the account (of that team) is not registered.
--          An unknown operation is an error reply (a programming error).
-- Complexity: O(1) for account operations; O(A log M) for team operations over the team's A
--   accounts (each is put back in the ring if eligible: no lost wake-ups).
--
-- A bucket's TAT is clamped to the new limit (gcra_clamp) when its limit changes, and only then:
-- setting the same limits again (an update of something else) keeps a pushed-back TAT (an
-- upstream 429's Retry-After) as it is. Loosening a limit or resuming puts eligible
-- accounts back in the ring at their new earliest time; pausing takes effect at the next lease.

local op = ARGV[2]

local function rering_team(team)
  for _, acct in ipairs(redis.call('SMEMBERS', k_team_accts(team))) do
    ring_if_eligible(acct, false)
  end
end

if op == 'account' then
  local acct, team = ARGV[3], ARGV[4]
  local ak = k_acct(acct)
  local registered = redis.call('HMGET', ak, 'tm', 'tn', 't', 'r', 'b')
  local current = registered[1]
  if current and current ~= team then
    if ARGV[9] ~= '1' then return { -1, current } end
    redis.call('SREM', k_team_accts(current), acct)
  end
  -- Moved to another tenant: out of the old tenant's ring (ring_if_eligible puts it in the new).
  if registered[2] and registered[2] ~= ARGV[5] then ring_remove(registered[2], acct) end
  local interval = gcra_interval(tonumber(ARGV[6]))
  local tat = tonumber(registered[3] or '0')
  if registered[4] ~= ARGV[6] or registered[5] ~= ARGV[7] then
    tat = gcra_clamp(tat, interval, gcra_tolerance(interval, tonumber(ARGV[7])), NOW)
  end
  redis.call('HSET', ak, 'tm', team, 'tn', ARGV[5], 'r', ARGV[6], 'b', ARGV[7], 'c', ARGV[8],
             't', fmt(tat))
  redis.call('SADD', k_team_accts(team), acct)
  ring_if_eligible(acct, false)
elseif op == 'team' then
  local team = ARGV[3]
  local interval = gcra_interval(tonumber(ARGV[4]))
  local current = redis.call('HMGET', k_team(team), 't', 'r', 'b', 'pb')
  local tat = tonumber(current[1] or '0')
  if current[2] ~= ARGV[4] or current[3] ~= ARGV[5] then
    local tolerance = gcra_tolerance(interval, tonumber(ARGV[5]))
    tat = gcra_clamp(tat, interval, tolerance, NOW)
    -- An upstream 429's hold outlasts the change: the clamp caps debt, never a Retry-After.
    tat = gcra_push_back(tat, tolerance, tonumber(current[4] or '0'))
  end
  redis.call('HSET', k_team(team), 'r', ARGV[4], 'b', ARGV[5], 't', fmt(tat), 'w', '0')
  rering_team(team)
elseif op == 'pause_account' then
  redis.call('HSET', k_acct(ARGV[3]), 'p', '1')
  ring_remove(redis.call('HGET', k_acct(ARGV[3]), 'tn') or '', ARGV[3])
elseif op == 'resume_account' then
  redis.call('HDEL', k_acct(ARGV[3]), 'p')
  ring_if_eligible(ARGV[3], false)
elseif op == 'push_back' then
  local team = ARGV[3]
  if redis.call('EXISTS', k_team(team)) == 1 then
    local t = load_team(team)
    t.tat = push_back_team(team, t.tat, t.tol, NOW + tonumber(ARGV[4]) * 1000)
    t.dirty = true  -- written by finish()
  end
elseif op == 'take' then
  local team, acct = ARGV[3], ARGV[4]
  if redis.call('EXISTS', k_team(team)) == 0 then return { -3, 0 } end
  local t = load_team(team)
  local a = nil
  if acct ~= '' then
    a = load_account(acct)
    if a.team ~= team then return { -3, 0 } end
  end
  if t.paused or (a and a.paused) then return { -2, 0 } end
  local at = gcra_allow_at(t.tat, t.tol, NOW)
  if a then
    local a_at = gcra_allow_at(a.tat, a.tol, NOW)
    if a_at > at then at = a_at end
  end
  if at > NOW then return { 0, at - NOW } end
  t.tat = gcra_take(t.tat, t.interval, NOW)
  t.dirty = true  -- written by finish()
  if a then redis.call('HSET', a.key, 't', fmt(gcra_take(a.tat, a.interval, NOW))) end
  finish()
  return { 1, 0 }
elseif op == 'tenant_weight' then
  redis.call('HSET', K_WEIGHTS, ARGV[3], ARGV[4])
elseif op == 'pause_team' then
  redis.call('HSET', k_team(ARGV[3]), 'p', '1')
elseif op == 'resume_team' then
  redis.call('HDEL', k_team(ARGV[3]), 'p')
  rering_team(ARGV[3])
else
  return redis.error_reply('ERR unknown configure operation ' .. tostring(op))
end
finish()
return { 1, '' }
