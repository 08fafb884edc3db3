-- GCRA (generic cell rate algorithm) bucket arithmetic, shared by every script that limits.
-- Prepended to the queue's scripts at build time: Redis scripts cannot call each other, and this
-- must stay the single source of truth for the limiter math. It is mirrored exactly, operation
-- for operation, by libs/ratelimit/src/gcra.cc (tests run both on the same inputs).
--
-- KEYS: none (pure functions).  ARGV: none.  Returns: nothing (defines local functions).
-- Complexity: O(1) per call.
--
-- Units: every time is an integer number of Unix microseconds. A bucket is one number, its
-- theoretical arrival time (TAT). A limit of `per_minute` tokens per minute with `burst` tokens
-- at once has
--   interval  = ceil(60e6 / per_minute)   (rounded up, so the rate never exceeds the limit)
--   tolerance = interval * (burst - 1)
-- A token is available at time t iff  max(tat, t) - t <= tolerance,  i.e. from  tat - tolerance;
-- taking it sets  tat = max(tat, t) + interval.  In any window of length w at most
-- burst + floor(w / interval) tokens are taken. Taking n tokens at once (gcra_take_n) is exactly
-- n single takes at the same instant, so the same bound holds. per_minute <= 0 means unlimited
-- (interval 0): such a bucket never advances but still honours a push-back (upstream 429
-- feedback). The quotient in gcra_available is exact: both operands are integers below 2^53.
-- Numbers stay below 2^53, so Lua's doubles hold them exactly; they are written back to Redis
-- with string.format('%d') because the default number-to-string conversion keeps 14 digits.

local function gcra_interval(per_minute)
  if per_minute <= 0 then return 0 end
  return math.ceil(60000000 / per_minute)
end

local function gcra_tolerance(interval, burst)
  if burst < 1 then burst = 1 end
  return interval * (burst - 1)
end

-- The earliest time, at or after `now`, at which the bucket has a token.
local function gcra_allow_at(tat, tolerance, now)
  local t = tat - tolerance
  if t < now then return now end
  return t
end

-- The bucket's TAT after taking one token at `now` (the caller checked gcra_allow_at <= now).
local function gcra_take(tat, interval, now)
  if interval == 0 then return tat end
  if tat < now then tat = now end
  return tat + interval
end

-- How many tokens the bucket holds at `now`, at most `max` (>= 0): token i (from 0) is there
-- iff max(tat, now) + i * interval - tolerance <= now, i.e. the i-th of i + 1 single takes at
-- `now` would be allowed. Unlimited buckets hold `max` unless pushed back.
local function gcra_available(tat, interval, tolerance, now, max)
  if tat - tolerance > now then return 0 end
  if interval == 0 then return max end
  local base = tat
  if base < now then base = now end
  local n = math.floor((now + tolerance - base) / interval) + 1
  if n > max then return max end
  return n
end

-- The bucket's TAT after taking `n` tokens at `now` (the caller checked gcra_available >= n).
local function gcra_take_n(tat, interval, now, n)
  if interval == 0 then return tat end
  if tat < now then tat = now end
  return tat + interval * n
end

-- The bucket's TAT after forbidding any token before `until_us` (e.g. an upstream Retry-After).
local function gcra_push_back(tat, tolerance, until_us)
  local t = until_us + tolerance
  if t > tat then return t end
  return tat
end

-- The bucket's TAT after its limit changed to (interval, tolerance): debt run up under the old
-- limit is capped at what a full burst under the new one would leave, so loosening a limit takes
-- effect at once and tightening it never grants more than the new burst.
local function gcra_clamp(tat, interval, tolerance, now)
  local t = now + tolerance + interval
  if tat > t then return t end
  return tat
end
