-- reap: returns expired leases (workers that vanished) to their accounts' ready lists, at the
-- head and flagged "previous outcome unknown", or to the dead letters after the last attempt.
-- The lease script also reaps a bounded number on every call; this script is for a dedicated
-- reaper and for tests.
--
-- KEYS[1]: shard hash tag "{hd:s<k>}" (every key used is built from it; see common.lua)
-- ARGV[1]: now (Unix us) or "" for Redis TIME
-- ARGV[2]: max leases to reap
-- Returns: the number of leases reaped.
-- Complexity: O(R log M) for R reaped.

local n = reap(tonumber(ARGV[2]))
finish()
return n
