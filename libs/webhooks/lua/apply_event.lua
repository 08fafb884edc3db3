-- apply_event.lua: records one upstream webhook event and applies it to the analytics, in one
-- atomic step, so that every event counts exactly once however often it is delivered.
--
-- KEYS[1]  the tenant's key prefix ("hd:{t:<tenant>}:"); every key below starts with it, so the
--          script touches one hash slot.
-- ARGV[1]  idempotency key            ARGV[2]  dedupe TTL (seconds)
-- ARGV[3]  event code: 1 queue progress, 2 message sent, 3 unlock, 4 transaction,
--          5 subscription, 6 fan data only
-- ARGV[4]  account id                 ARGV[5]  mass message (queue) id, 0 if none
-- ARGV[6]  chat message id, 0 if none ARGV[7]  fan id, 0 if none
-- ARGV[8]  price (cents, messages sent)
-- ARGV[9]  amount, ARGV[10] net, ARGV[11] fee (cents; -1 when the event has none)
-- ARGV[12] fan lifetime spend (cents), -1 if unknown
-- ARGV[13] fan subscribed at (unix ms), -1 if unknown
-- ARGV[14] event time (unix ms, Herald's clock)
-- ARGV[15] link TTL (seconds): how long a priced message's link to its mass message is kept
-- ARGV[16] queue total, ARGV[17] queue pending, ARGV[18] queue done (0/1), ARGV[19] cancelled (0/1)
-- ARGV[20] event name              ARGV[21] events stream length (about; 0: no stream)
--
-- Keys (relative to the prefix):
--   ev:<key>                  the event was applied (TTL: dedupe window)
--   mm:<account>:<queue>      stats of one mass message: sent, purchases, gross, net, fee,
--                             total, pending, done, canceled, updated_ms (any change),
--                             progress_ms (the last queue event)
--   mb:<account>:<queue>      its buyers: fan id -> time of first purchase (sorted set)
--   mbc:<account>:<queue>     its buyers' spend on it: fan id -> cents
--   mbr:<account>:<queue>     buyers only the reconciler has seen: fan id -> "gross:net:fee"
--                             as it estimated them (reconcile_buyers.lua)
--   msg:<account>:<chat>      a priced chat message -> its mass message id (TTL: link TTL)
--   buy:<account>:<chat>      one purchase of a chat message: what has arrived of it and what
--                             has been credited (TTL: link TTL)
--   fans:<account>            fan id -> JSON {lifetime_spend_cents, subscribed_at_ms}
--   acct:<account>            the account's totals: sent, purchases, gross, net, fee,
--                             subscriptions (new subscribers)
--   events                    the tenant's applied events, normalised (a stream, trimmed to
--                             about ARGV[21] entries) for EventService subscribers
--
-- Returns 1 applied, 0 duplicate.
local P = KEYS[1]
if not redis.call('SET', P .. 'ev:' .. ARGV[1], '1', 'NX', 'EX', tonumber(ARGV[2])) then
  return 0
end

local code = tonumber(ARGV[3])
local account = ARGV[4]
local queue = ARGV[5]
local chat = ARGV[6]
local fan = ARGV[7]
local now = tonumber(ARGV[14])
local link_ttl = tonumber(ARGV[15])

local function stats_key(q) return P .. 'mm:' .. account .. ':' .. q end
local account_key = P .. 'acct:' .. account

-- Adds `by` to `field` of mass message `q` and of the account's totals.
local function add(q, field, by)
  redis.call('HINCRBY', stats_key(q), field, by)
  redis.call('HINCRBY', account_key, field, by)
end

-- Credits what has arrived of the purchase of `chat` to mass message `q`, each part once:
-- the purchase itself (counted, buyer recorded) when its unlock or its transaction arrives, the
-- gross amount from whichever carries one first, net and fee from the transaction.
--
-- A purchase the reconciler found first (reconcile_buyers.lua: the fan is already a buyer, with
-- estimated amounts in mbr:) is not counted again: its estimate becomes what was credited, and
-- the event's exact amounts correct it.
local function credit(q)
  local buy = P .. 'buy:' .. account .. ':' .. chat
  local b = redis.call('HMGET', buy, 'counted', 'gross_done', 'net_done', 'unlock_amount',
                       'tx_amount', 'tx_net', 'tx_fee', 'fan', 'at', 'est_net', 'est_fee')
  local sk = stats_key(q)
  local buyer = b[8] or fan
  local buyers = P .. 'mb:' .. account .. ':' .. q
  if not b[1] then
    local estimate = redis.call('HGET', P .. 'mbr:' .. account .. ':' .. q, buyer)
    if estimate then
      local g, n, f = string.match(estimate, '^(%-?%d+):(%-?%d+):(%-?%d+)$')
      b[2], b[10], b[11] = g, n, f
      redis.call('HSET', buy, 'gross_done', g, 'est_net', n, 'est_fee', f)
      redis.call('HDEL', P .. 'mbr:' .. account .. ':' .. q, buyer)
    elseif not redis.call('ZSCORE', buyers, buyer) then
      add(q, 'purchases', 1)
      redis.call('ZADD', buyers, 'NX', tonumber(b[9] or now), buyer)
    end
    redis.call('HSET', buy, 'counted', '1')
  end
  -- gross_done holds the gross amount credited so far: the transaction's amount wins over the
  -- unlock's when both arrive (any difference is corrected once).
  local gross = b[5]
  if not gross and tonumber(b[4] or '0') > 0 then gross = b[4] end
  if gross and gross ~= b[2] then
    local delta = tonumber(gross) - tonumber(b[2] or '0')
    add(q, 'gross', delta)
    redis.call('HINCRBY', P .. 'mbc:' .. account .. ':' .. q, buyer, delta)
    redis.call('HSET', buy, 'gross_done', gross)
  end
  if not b[3] and b[6] then
    add(q, 'net', tonumber(b[6]) - tonumber(b[10] or '0'))
    add(q, 'fee', tonumber(b[7] or '0') - tonumber(b[11] or '0'))
    redis.call('HSET', buy, 'net_done', '1')
  end
  redis.call('HSET', sk, 'updated_ms', now)
end

-- A purchase of chat message `chat`: keep what it says, then credit it if the message's mass
-- message is known (else messages.sent credits it when it arrives).
local function purchase(fields)
  local buy = P .. 'buy:' .. account .. ':' .. chat
  redis.call('HSET', buy, unpack(fields))
  redis.call('HSETNX', buy, 'fan', fan)
  redis.call('HSETNX', buy, 'at', now)
  redis.call('EXPIRE', buy, link_ttl)
  local q = redis.call('GET', P .. 'msg:' .. account .. ':' .. chat)
  if q then credit(q) end
end

local function fan_data()
  local spend = tonumber(ARGV[12])
  local since = tonumber(ARGV[13])
  if (spend < 0 and since < 0) or fan == '0' then return end
  local fk = P .. 'fans:' .. account
  local current = redis.call('HGET', fk, fan)
  local data = { lifetime_spend_cents = 0, subscribed_at_ms = 0 }
  if current then
    local ok, decoded = pcall(cjson.decode, current)
    if ok and type(decoded) == 'table' then
      data.lifetime_spend_cents = tonumber(decoded.lifetime_spend_cents) or 0
      data.subscribed_at_ms = tonumber(decoded.subscribed_at_ms) or 0
    end
  end
  -- Spend only grows and a later subscription replaces an earlier one, so taking the larger
  -- value makes the result independent of the order events arrive in.
  if spend > data.lifetime_spend_cents then data.lifetime_spend_cents = spend end
  if since > data.subscribed_at_ms then data.subscribed_at_ms = since end
  redis.call('HSET', fk, fan, string.format('{"lifetime_spend_cents":%d,"subscribed_at_ms":%d}',
                                            data.lifetime_spend_cents, data.subscribed_at_ms))
end

if code == 1 then
  local sk = stats_key(queue)
  local s = redis.call('HMGET', sk, 'done', 'pending')
  local pending = tonumber(ARGV[17])
  -- Progress only moves forward: an update that arrives after a later one changes nothing.
  if s[1] ~= '1' and (not s[2] or pending <= tonumber(s[2])) then
    redis.call('HSET', sk, 'total', ARGV[16], 'pending', pending, 'done', ARGV[18],
               'canceled', ARGV[19], 'updated_ms', now, 'progress_ms', now)
  end
elseif code == 2 then
  if queue ~= '0' then
    add(queue, 'sent', 1)
    if tonumber(ARGV[8]) > 0 and chat ~= '0' then
      redis.call('SET', P .. 'msg:' .. account .. ':' .. chat, queue, 'EX', link_ttl)
      if redis.call('EXISTS', P .. 'buy:' .. account .. ':' .. chat) == 1 then credit(queue) end
    end
  end
elseif code == 5 then
  redis.call('HINCRBY', account_key, 'subscriptions', 1)
  fan_data()
elseif code == 3 then
  if chat ~= '0' then purchase({ 'unlock_amount', ARGV[9] }) end
  fan_data()
elseif code == 4 then
  if chat ~= '0' then
    purchase({ 'tx_amount', ARGV[9], 'tx_net', ARGV[10], 'tx_fee', ARGV[11] })
  end
  fan_data()
else
  fan_data()
end
local stream_len = tonumber(ARGV[21])
if stream_len > 0 then
  redis.call('XADD', P .. 'events', 'MAXLEN', '~', stream_len, '*', 'type', ARGV[20], 'account',
             account, 'message', queue, 'chat', chat, 'fan', fan, 'price', ARGV[8], 'amount',
             ARGV[9], 'at', now)
end
return 1
