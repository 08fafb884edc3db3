-- reap: returns expired leases (workers that vanished) to their accounts' ready lists, at the
-- head and flagged "previous outcome unknown", or to the dead letters after the last attempt.
-- The lease script also reaps a bounded number on every call; this script is for a dedicated
-- reaper and for tests.
--
-- KEYS[1]: shard hash tag "{hd:s<k>}" (every key used is built from it; see common.lua)
-- ARGV[1]: now (Unix us) or "" for Redis TIME
-- ARGV[2]: max expired lease groups to reap (each holds up to jobs_per_visit jobs)
-- Returns: the number of jobs whose leases were reaped.
-- Complexity: O(R log M) for R jobs reaped.

local n = reap(tonumber(ARGV[2]))
finish()
return n
