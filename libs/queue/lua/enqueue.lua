-- enqueue: adds jobs to one shard, idempotently by job id.
--
-- KEYS[1]: shard hash tag "{hd:s<k>}" (every key used is built from it; see common.lua)
-- ARGV[1]: now (Unix us) or "" for Redis TIME
-- ARGV[2]: idempotency window for completed jobs (ms)
-- ARGV[3..]: groups of 8 per job: id, kind, account, team, tenant, payload (bytes),
--            max attempts, delay (ms; 0 = ready now)
-- Returns: one integer per job: 1 enqueued, 0 duplicate (the id is queued, delayed, leased, dead,
--          or completed within the window: nothing changes), -1 the account is registered to
--          another team (nothing changes for that job).
-- Complexity: O(J log M) for J jobs, in a fixed number of calls per batch (SMISMEMBER on two
--   completed-id generations, HMGET of the records, HSET of the new ones) plus one HGET and one
--   RPUSH per account in the batch (and two more calls when the account is new).
--
-- The first job of an account registers it (team, tenant). A job's record goes to P:jd; a ready
-- job's id goes to the tail of its account's list, and an account whose list was empty joins the
-- ring if eligible. kind and account must be 1..255 bytes (they are length-prefixed in the record).

local jobs = {}
for i = 3, #ARGV, 8 do
  jobs[#jobs + 1] = { ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5],
                      ARGV[i + 6], tonumber(ARGV[i + 7]) }
end
local out = enqueue_jobs(jobs, tonumber(ARGV[2]))
finish()
return out
