-- nack: finishes leased jobs that did not succeed.
--
-- KEYS[1]: shard hash tag "{hd:s<k>}" (every key used is built from it; see common.lua)
-- ARGV[1]: now (Unix us) or "" for Redis TIME
-- ARGV[2..]: groups of 6 per job: id, lease token, mode, number, reason, unknown ("0"/"1")
--   mode "retry":   retry after `number` ms (backoff computed by the caller), or dead-letter with
--                   `reason` when the attempts are used up. unknown "1" flags the next attempt
--                   "previous outcome unknown".
--   mode "dead":    dead-letter now with `reason` (a terminal error).
--   mode "limited": upstream said 429: the team's bucket is pushed to now + `number` ms and the
--                   job returns to the head of its account's list without losing an attempt;
--                   unknown "1" keeps the next attempt flagged as for "release".
--   mode "release": the worker is draining: the job returns to the head of its account's list
--                   without losing an attempt; unknown "1" (a job stopped mid-call) flags the
--                   next attempt as for "retry".
--   mode "defer":   not now (Herald's own store was unavailable, an earlier call's outcome is
--                   not known yet): retry after `number` ms without losing an attempt (`reason`
--                   is kept as the last error; unknown as for "retry").
-- Returns: one integer per job: 1 delayed for retry, 2 dead, 3 back to ready, -1 fenced (the
--          token is not the job's current lease: nothing changes).
-- Complexity: O(J log M).

local out = {}
for i = 2, #ARGV, 6 do
  local id, token, mode = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local number, reason, unknown = tonumber(ARGV[i + 3]), ARGV[i + 4], ARGV[i + 5]
  local result = -1
  local acct, kind, counted, r = take_lease(id, token)
  if acct then
    free_slot(acct, counted)
    if mode == 'retry' or mode == 'dead' or mode == 'defer' then
      local attempts, max_attempts = r.failed + 1, r.max
      if mode == 'defer' or (mode == 'retry' and attempts < max_attempts) then
        if mode == 'retry' then r.failed = attempts end
        r.reason = reason
        if unknown == '1' then r.unknown = true end
        r.ready = NOW_MS + number
        redis.call('HSET', K_JOBS, id, write_record(r))
        redis.call('ZADD', K_DELAYED, fmt(r.ready), id)
        stat('d', 1)
        stat('o:' .. kind .. ':retry', 1)
        result = 1
      else
        if mode == 'retry' then
          reason = reason .. ' (attempt ' .. attempts .. ' of ' .. max_attempts .. ')'
        end
        dead_letter(id, r, reason, attempts)
        result = 2
      end
      if counted then rering(acct) end
    else
      -- Ready again from now (its wait before the lease was counted then).
      if unknown == '1' then r.unknown = true end
      r.ready = NOW_MS
      redis.call('HSET', K_JOBS, id, write_record(r))
      if mode == 'limited' then
        local team = redis.call('HGET', k_acct(acct), 'tm')
        if team then
          local t = load_team(team)
          t.tat = push_back_team(team, t.tat, t.tol, NOW + number * 1000)
          t.dirty = true
        end
        stat('o:' .. kind .. ':rate_limited', 1)
      else
        stat('o:' .. kind .. ':released', 1)
      end
      return_to_ready(id, acct)
      result = 3
    end
  end
  out[#out + 1] = result
end
finish()
return out
