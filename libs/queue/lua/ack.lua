-- ack: completes leased jobs, each optionally chained to a next job enqueued in the same atomic
-- step (a workflow chain neither forks nor stalls).
--
-- KEYS[1]: shard hash tag "{hd:s<k>}" (every key used is built from it; see common.lua)
-- ARGV[1]: now (Unix us) or "" for Redis TIME
-- ARGV[2]: idempotency window for completed jobs (ms)
-- ARGV[3..]: per job: id, lease token, has_next ("0" or "1"), and when has_next is "1" the next
--            job's 8 fields as in enqueue.lua (it must belong to this shard)
-- Returns: two integers per job: {ack, next}. ack: 1 done, -1 fenced (the token is not the job's
--          current lease: nothing changes, the next job is not enqueued). next: as enqueue.lua
--          (1, 0 duplicate, -1 wrong team), or -2 when there was no next job or it was not tried.
-- Complexity: O(J log M), in a fixed number of calls for the whole batch (plus two per job of
--   an account with an in-flight cap, and the chained enqueues).
--
-- A completed job leaves no record; its id is kept in the completed-id generations (common.lua)
-- for the idempotency window so a replayed enqueue is reported duplicate.

local window_ms = tonumber(ARGV[2])
-- Parse every entry, then check all the leases with one ZMSCORE.
local entries, tokens = {}, {}
local i = 3
while i <= #ARGV do
  local e = { id = ARGV[i], token = ARGV[i + 1] }
  if ARGV[i + 2] == '1' then
    e.next = { ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8],
               ARGV[i + 9], tonumber(ARGV[i + 10]) }
    i = i + 11
  else
    i = i + 3
  end
  entries[#entries + 1] = e
  tokens[#tokens + 1] = e.token
end
local current = {}
if #tokens > 0 then current = redis.call('ZMSCORE', K_LEASES, unpack(tokens)) end

-- The acks: leases and their records go, ids leave the live set and enter the completed set;
-- each kind of write is one call for the whole batch.
local seen, gone, done, nexts = {}, {}, {}, {}
for n, e in ipairs(entries) do
  local id, acct, kind, counted = parse_token(e.token)
  if current[n] and id == e.id and not seen[e.token] then
    seen[e.token] = true
    e.ok, e.acct, e.counted = true, acct, counted
    gone[#gone + 1] = e.token
    done[#done + 1] = id
    stat('l', -1)
    stat('o:' .. kind .. ':ok', 1)
    if e.next then nexts[#nexts + 1] = e end
  end
end
for k = 1, #gone, 1000 do
  local last = math.min(k + 999, #gone)
  redis.call('ZREM', K_LEASES, unpack(gone, k, last))
  redis.call('HDEL', K_LEASED, unpack(gone, k, last))
  redis.call('SREM', K_IDS, unpack(done, k, last))
end
mark_done(done, window_ms)

-- The chained next steps, then the in-flight slots of capped accounts (only those can be out
-- of the ring for want of a slot).
local next_jobs = {}
for _, e in ipairs(nexts) do next_jobs[#next_jobs + 1] = e.next end
local next_results = enqueue_jobs(next_jobs, window_ms)
for k, e in ipairs(nexts) do e.result = next_results[k] end
for _, e in ipairs(entries) do
  if e.ok and e.counted then
    free_slot(e.acct, true)
    rering(e.acct)
  end
end

local out = {}
for _, e in ipairs(entries) do
  if e.ok then
    out[#out + 1] = 1
    out[#out + 1] = e.result or -2
  else
    out[#out + 1] = -1
    out[#out + 1] = -2
  end
end
finish()
return out
