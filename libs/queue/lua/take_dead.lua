-- take_dead: hands out the shard's dead letters to a process that acts on them (a delivery
-- whose step died is marked failed), at least once: each taken id is claimed for a while, and
-- offered again once the claim runs out unless its taker said it was done with it.
--
-- KEYS[1]: shard hash tag "{hd:s<k>}" (every key used is built from it; see common.lua)
-- ARGV[1]: now (Unix us) or "" for Redis TIME
-- ARGV[2]: "take", "return" or "done"
-- ARGV[3..]: take: N, the most to take, the claim (ms), then the retention (ms; absent or 0:
--            dead letters are kept for good);
--            return: the ids given back, in the order taken; done: the ids acted on
-- Returns: take: { id_1, kind_1, account_1, payload_1, attempts_1, reason_1, dead_at_ms_1, ... }
--            for each id taken that is still dead (one requeued or purged since is skipped and
--            its claim dropped);
--          return, done: the number of ids given.
-- Complexity: O(N log M) for M claims held: a ZRANGEBYSCORE, an LPOP, one ZADD, one HMGET and
--   one ZMSCORE for all of them; plus O(DEAD_PURGE_MAX log D) for D dead letters when the
--   retention is set.
--
-- Claims whose time ran out come first, oldest first, then dead letters not taken yet, in the
-- order they died. Ids given back are claimed until time 0, so they come first again. A taker
-- that dies before acting (or before saying done) leaves its claims to run out: the dead letter
-- is offered again, so a handler must be idempotent.
--
-- With a retention, a take also purges dead letters that died longer ago than that, oldest
-- first and at most DEAD_PURGE_MAX per call, once their owner has acted on them: none still
-- waiting in P:dq to be taken, none claimed in P:dqt. A purged job's id is free again (an
-- enqueue of it makes a new job), so the retention is at least the idempotency window.

local DEAD_PURGE_MAX = 100

-- Purges the dead letters of more than `retention_ms` ago that no taker still needs; returns
-- how many.
local function purge_dead(retention_ms)
  if retention_ms == nil or retention_ms <= 0 then return 0 end
  local old = redis.call('ZRANGEBYSCORE', K_DEAD, '-inf', fmt(NOW_MS - retention_ms),
                         'WITHSCORES', 'LIMIT', 0, DEAD_PURGE_MAX)
  if #old == 0 then return 0 end
  -- P:dq holds ids in the order they died: one that died before its head did is not in it.
  local waiting_since = math.huge
  local head = redis.call('LINDEX', K_DEAD_NOTICES, 0)
  if head then waiting_since = tonumber(redis.call('ZSCORE', K_DEAD, head)) or -math.huge end
  local ids = {}
  for i = 1, #old, 2 do ids[#ids + 1] = old[i] end
  local claimed = redis.call('ZMSCORE', K_DEAD_TAKEN, unpack(ids))
  local purged = {}
  for i, id in ipairs(ids) do
    if tonumber(old[2 * i]) >= waiting_since then break end
    if not claimed[i] then purged[#purged + 1] = id end
  end
  if #purged == 0 then return 0 end
  redis.call('ZREM', K_DEAD, unpack(purged))
  redis.call('HDEL', K_JOBS, unpack(purged))
  redis.call('HINCRBY', K_STATS, 'x', -#purged)
  return #purged
end

if ARGV[2] == 'return' or ARGV[2] == 'done' then
  local n = #ARGV - 2
  for i = 3, #ARGV do
    if ARGV[2] == 'return' then
      redis.call('ZADD', K_DEAD_TAKEN, 0, ARGV[i])
    else
      redis.call('ZREM', K_DEAD_TAKEN, ARGV[i])
    end
  end
  return n
end

local max = tonumber(ARGV[3])
local claim = tonumber(ARGV[4])
purge_dead(tonumber(ARGV[5]))
local ids = redis.call('ZRANGEBYSCORE', K_DEAD_TAKEN, '-inf', NOW_MS_TEXT, 'LIMIT', 0, max)
if #ids < max then
  local fresh = redis.call('LPOP', K_DEAD_NOTICES, max - #ids)
  if fresh then
    for _, id in ipairs(fresh) do ids[#ids + 1] = id end
  end
end
local out = {}
if #ids == 0 then return out end
local records = hmget(K_JOBS, ids)
local dead = redis.call('ZMSCORE', K_DEAD, unpack(ids))
local claims = {}
for i, id in ipairs(ids) do
  local r = records[i] and dead[i] and read_record(records[i])
  if r then
    claims[#claims + 1] = fmt(NOW_MS + claim)
    claims[#claims + 1] = id
    out[#out + 1] = id
    out[#out + 1] = r.kind
    out[#out + 1] = r.acct
    out[#out + 1] = r.payload
    out[#out + 1] = r.failed
    out[#out + 1] = r.reason
    out[#out + 1] = r.dead
  else
    redis.call('ZREM', K_DEAD_TAKEN, id)
  end
end
if #claims > 0 then redis.call('ZADD', K_DEAD_TAKEN, unpack(claims)) end
return out
