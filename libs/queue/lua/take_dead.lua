-- take_dead: hands out the shard's dead letters that no caller has taken yet, oldest first, to
-- a process that acts on them (a delivery whose step died is marked failed), or gives back those
-- a caller took but could not act on.
--
-- KEYS[1]: shard hash tag "{hd:s<k>}" (every key used is built from it; see common.lua)
-- ARGV[1]: now (Unix us) or "" (unused; kept for a uniform argument layout)
-- ARGV[2]: "take" or "return"
-- ARGV[3..]: take: N, the most to take; return: the ids given back, in the order taken
-- Returns: take: { id_1, kind_1, account_1, payload_1, attempts_1, reason_1, dead_at_ms_1, ... }
--            for each id taken that is still dead (one requeued or purged since is skipped);
--          return: the number of ids given back.
-- Complexity: O(N) calls: LPOP, then one HMGET and one ZMSCORE for all of them.
--
-- Each dead letter is taken once (at most once: a caller that dies before acting loses it; the
-- dead letter itself stays in P:dead). Ids given back go to the front, so they come first again.

if ARGV[2] == 'return' then
  local n = #ARGV - 2
  for i = #ARGV, 3, -1 do redis.call('LPUSH', K_DEAD_NOTICES, ARGV[i]) end
  return n
end

local ids = redis.call('LPOP', K_DEAD_NOTICES, tonumber(ARGV[3]))
local out = {}
if not ids or #ids == 0 then return out end
local records = hmget(K_JOBS, ids)
local dead = redis.call('ZMSCORE', K_DEAD, unpack(ids))
for i, id in ipairs(ids) do
  local r = records[i] and dead[i] and read_record(records[i])
  if r then
    out[#out + 1] = id
    out[#out + 1] = r.kind
    out[#out + 1] = r.acct
    out[#out + 1] = r.payload
    out[#out + 1] = r.failed
    out[#out + 1] = r.reason
    out[#out + 1] = r.dead
  end
end
return out
