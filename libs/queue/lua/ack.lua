-- ack: completes leased jobs, each optionally chained to a next job enqueued in the same atomic
-- step (a workflow chain neither forks nor stalls).
--
-- KEYS[1]: shard hash tag "{hd:s<k>}" (every key used is built from it; see common.lua)
-- ARGV[1]: now (Unix us) or "" for Redis TIME
-- ARGV[2]: idempotency window for completed jobs (ms)
-- ARGV[3]: G, the number of token groups that follow
-- ARGV[4..]: G groups of the jobs' lease tokens, each: prefix, n, then n job ids (a job's token
--            is prefix .. id, common.lua; jobs are numbered 1, 2, ... in this order); then per
--            job chained to a next step: its number and the next job's 8 fields as in
--            enqueue.lua (it must belong to this shard)
-- Returns: two integers per job, in order: {ack, next}. ack: 1 done, -1 fenced (the token is not
--          the job's current lease: nothing changes, the next job is not enqueued). next: as
--          enqueue.lua (1, 0 duplicate, -1 wrong team), or -2 when there was no next job or it
--          was not tried.
-- Complexity: O(J log M): three calls per group (HMGET, HDEL, EXISTS; two when one of its jobs is
--   acked) and a fixed number for the whole batch (HDEL of the records, SADD of the completed ids,
--   ZREM of emptied groups, one HINCRBY per outcome kind), plus two per account with an in-flight
--   cap among the acked jobs, and the chained enqueues.
--
-- A completed job leaves no record; its id is kept in the completed-id generations (common.lua)
-- for the idempotency window so a replayed enqueue is reported duplicate.

local window_ms = tonumber(ARGV[2])
local ok, done, emptied = {}, {}, {}
local by_kind = {}
local freed, freed_order = {}, {}  -- capped account -> slots freed
local n = 0
local i = 4
for _ = 1, tonumber(ARGV[3]) do
  local prefix, count = ARGV[i], tonumber(ARGV[i + 1])
  local ids = {}
  for k = 1, count do ids[k] = ARGV[i + 1 + k] end
  i = i + 2 + count
  local first = n
  n = n + count
  local seq_text, acct, kind, counted = parse_prefix(prefix)
  if seq_text and count > 0 then
    local key = k_group(seq_text)
    local held
    if count == 1 then
      -- One job of the group (a delivery's steps lease one job per visit): HDEL both ends the
      -- lease and says whether it was still held, so the group needs no read.
      held = { redis.call('HDEL', key, ids[1]) == 1 }
    else
      held = call_chunked('HMGET', key, ids)
    end
    local gone, seen = {}, {}
    for k = 1, count do
      local id = ids[k]
      if held[k] and not seen[id] then
        seen[id] = true
        ok[first + k] = true
        gone[#gone + 1] = id
        done[#done + 1] = id
      end
    end
    if #gone > 0 then
      if count > 1 then call_chunked('HDEL', key, gone) end
      if redis.call('EXISTS', key) == 0 then emptied[#emptied + 1] = prefix end
      by_kind[kind] = (by_kind[kind] or 0) + #gone
      if counted then
        if freed[acct] == nil then
          freed[acct] = 0
          freed_order[#freed_order + 1] = acct
        end
        freed[acct] = freed[acct] + #gone
      end
    end
  end
end

-- The acks: records go, ids enter the completed set, emptied groups leave P:ls; each kind of
-- write is one call for the whole batch, and counters are summed by kind.
if #done > 0 then
  call_chunked('HDEL', K_JOBS, done)
  stat('l', -#done)
  for kind, c in pairs(by_kind) do stat('o:' .. kind .. ':ok', c) end
end
if #emptied > 0 then call_chunked('ZREM', K_LEASES, emptied) end
mark_done(done, window_ms)

-- The chained next steps of acked jobs, then the in-flight slots of capped accounts (only those
-- can be out of the ring for want of a slot).
local next_jobs, next_of = {}, {}
while i <= #ARGV do
  local k = tonumber(ARGV[i])
  if ok[k] then
    next_jobs[#next_jobs + 1] = { ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
                                  ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], tonumber(ARGV[i + 8]) }
    next_of[#next_jobs] = k
  end
  i = i + 9
end
local next_result = {}
local results = enqueue_jobs(next_jobs, window_ms)
for j, k in ipairs(next_of) do next_result[k] = results[j] end
for _, acct in ipairs(freed_order) do
  free_slot(acct, true, freed[acct])
  rering(acct)
end

local out = {}
for k = 1, n do
  if ok[k] then
    out[#out + 1] = 1
    out[#out + 1] = next_result[k] or -2
  else
    out[#out + 1] = -1
    out[#out + 1] = -2
  end
end
finish()
return out
