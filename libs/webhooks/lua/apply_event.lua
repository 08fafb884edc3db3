-- apply_event.lua: records a batch of upstream webhook events (one group commit) and applies
-- each to the analytics, atomically, so that every event counts exactly once however often it
-- is delivered. The events of a batch belong to one tenant and are applied in order.
--
-- KEYS[1]  the tenant's key prefix ("hd:{t:<tenant>}:"); every key below starts with it, so the
--          script touches one hash slot.
-- ARGV[1]  dedupe TTL (seconds)       ARGV[2]  link TTL (seconds): how long a priced message's
--                                               link to its mass message is kept
-- ARGV[3]  time (unix ms, Herald's clock)
-- ARGV[4]  events stream length (about; 0: no stream)
-- ARGV[5]  the platform's fee, in percent of a purchase's gross: net and fee of a purchase
--          known only from its unlock are estimated with it until its transaction arrives
-- ARGV[6]  the number of events; then 18 arguments per event:
--   +1  idempotency key
--   +2  event code: 1 queue progress, 2 message sent, 3 unlock, 4 transaction, 5 subscription,
--       6 fan data only (a renewal, an expiry)
--   +3  account id                 +4  mass message (queue) id, 0 if none
--   +5  chat message id, 0 if none +6  fan id, 0 if none
--   +7  price (cents, messages sent)
--   +8  amount, +9 net, +10 fee (cents; -1 when the event has none)
--   +11 fan lifetime spend (cents), -1 if unknown
--   +12 fan subscribed at (unix ms), -1 if unknown (a new subscription's is then the time now)
--   +13 queue total, +14 queue pending (-1 both when the event gives no counts),
--   +15 queue done (0/1), +16 cancelled (0/1)
--   +17 event name
--   +18 when the purchase was made (unix ms, unlocks and transactions), -1 if unknown
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
--   msg:<account>:<chat>      a priced chat message -> its mass message id, and ":<fan>" the
--                             fan it was sent to when known (TTL: link TTL)
--   buy:<account>:<chat>      one purchase of a chat message: what has arrived of it and what
--                             has been credited, net and fee estimated until its transaction
--                             arrives included (TTL: link TTL)
--   fans:<account>            fan id -> JSON {lifetime_spend_cents, subscribed_at_ms}
--   acct:<account>            the account's totals: sent, purchases, gross, net, fee,
--                             subscriptions (new subscribers)
--   events                    the tenant's applied events, normalised (a stream, trimmed to
--                             about ARGV[4] entries, never fewer) for EventService subscribers
--
-- Returns one reply per event, in order: 1 applied, 0 duplicate, 2 applied but unattributed (a
-- purchase whose mass message is not known yet: credited if its messages.sent arrives), or an
-- error when applying the event failed. A failure is the event's own: the events before and
-- after it in the batch are applied as if it were not there, and its dedupe key is removed, so
-- that the sender's retry applies it rather than finding a duplicate. (The counter keys the
-- batch writes at its end are checked as events first name them, so that those last writes do
-- not fail for a key of another type.)
--
-- Counter increments and "updated" stamps are summed over the batch and written once per key
-- and field at its end: nothing in the batch reads them, so the result is the same, and the
-- events of one mass message (most of a batch) cost one HINCRBY instead of one each. An event
-- that fails has its own increments taken back out of the sums. Values
-- that arrive as strings (the time, the TTLs, queue progress) go back to Redis as strings: a
-- Lua number is formatted with printf on every call.
local P = KEYS[1]
local dedupe_ttl = ARGV[1]
local link_ttl = ARGV[2]
local now = ARGV[3]
local stream_len = ARGV[4]
local stream = tonumber(stream_len) > 0
local fee_percent = tonumber(ARGV[5])
local count = tonumber(ARGV[6])
local FIELDS = 18

-- Increments owed at the end of the batch: key -> field -> amount, keys in first-use order.
local increments, incremented = {}, {}
-- Mass-message stats keys whose updated_ms is set at the end of the batch.
local touched, touched_keys = {}, {}
-- What the current event added to the increments (key, field, amount, ...), the first n_added
-- entries: subtracted again if the event fails, except entries keep_from..keep_to, a purchase's
-- credit whose record was saved (the saved record says it was credited: a retry credits nothing
-- again). Reused from event to event.
local added, n_added, keep_from, keep_to = {}, 0, 0, -1
-- Whether the current event's dedupe key was set (by it): only then does a failure remove it.
local marked = false
-- Keys the batch writes at its end, checked to be hashes (or absent) when an event first names
-- one: a key of another type fails that event, inside its pcall, not the batch's last writes.
local checked = {}

local function check(key)
  if checked[key] then return end
  local kind = redis.call('TYPE', key).ok
  if kind ~= 'hash' and kind ~= 'none' then
    error({ err = 'WRONGTYPE a counter key of the event holds a ' .. kind .. ', not a hash' })
  end
  checked[key] = true
end

local function incr(key, field, by)
  local fields = increments[key]
  if not fields then
    check(key)
    fields = {}
    increments[key] = fields
    incremented[#incremented + 1] = key
  end
  fields[field] = (fields[field] or 0) + by
  added[n_added + 1], added[n_added + 2], added[n_added + 3] = key, field, by
  n_added = n_added + 3
end

local function touch(key)
  if not touched[key] then
    check(key)
    touched[key] = true
    touched_keys[#touched_keys + 1] = key
  end
end

-- Keeps the increments added since `from` (n_added then), whatever happens to the event.
local function keep(from)
  keep_from, keep_to = from + 1, n_added
end

-- Takes back what the current event added to the increments, but for what keep kept.
local function undo()
  for i = 1, n_added, 3 do
    if i < keep_from or i > keep_to then
      local fields = increments[added[i]]
      fields[added[i + 1]] = fields[added[i + 1]] - added[i + 2]
    end
  end
end

local function flush()
  for _, key in ipairs(incremented) do
    for field, by in pairs(increments[key]) do
      if by ~= 0 then redis.call('HINCRBY', key, field, string.format('%d', by)) end
    end
  end
  for _, key in ipairs(touched_keys) do redis.call('HSET', key, 'updated_ms', now) end
end

-- The event being applied: its arguments start at ARGV[base + 1].
local base, account, queue, chat, fan
local function arg(i) return ARGV[base + i] end

local function stats_key(q) return P .. 'mm:' .. account .. ':' .. q end
local function account_key() return P .. 'acct:' .. account end

-- Adds `by` to `field` of mass message `q` and of the account's totals (at the batch's end).
local function add(q, field, by)
  incr(stats_key(q), field, by)
  incr(account_key(), field, by)
end

-- The fields of a purchase's buy: hash, in the order read_buy reads them; the names below index
-- them.
local BUY_FIELDS = { 'counted', 'gross_done', 'net_done', 'unlock_amount', 'tx_amount', 'tx_net',
                     'tx_fee', 'fan', 'at', 'est_net', 'est_fee' }
local COUNTED, GROSS_DONE, NET_DONE, UNLOCK_AMOUNT, TX_AMOUNT, TX_NET, TX_FEE, BUY_FAN, BUY_AT,
      EST_NET, EST_FEE = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11

local function buy_key() return P .. 'buy:' .. account .. ':' .. chat end

-- The link messages.sent leaves from chat message `chat` to its mass message: "<queue id>", or
-- "<queue id>:<fan id>" naming the fan it was sent to.
local function link_key() return P .. 'msg:' .. account .. ':' .. chat end

-- The mass message `chat` belongs to and the fan it was sent to (nil when not said), or false
-- when no link is known (yet).
local function read_link()
  local link = redis.call('GET', link_key())
  if not link then return false end
  local q, recipient = string.match(link, '^([^:]+):?(.*)$')
  if recipient == '' then recipient = nil end
  return q, recipient
end

-- What is stored of the purchase of `chat` (BUY_FIELDS order, false where absent), and an empty
-- list of changes to it: set_buy appends (field, value) pairs, save_buy writes them in one HSET.
local function read_buy()
  return redis.call('HMGET', buy_key(), unpack(BUY_FIELDS)), {}
end

local function set_buy(b, changes, field, value)
  b[field] = value
  changes[#changes + 1] = BUY_FIELDS[field]
  changes[#changes + 1] = value
end

local function save_buy(changes)
  if #changes > 0 then redis.call('HSET', buy_key(), unpack(changes)) end
end

-- Credits what has arrived of the purchase of `chat` (`b`, as read_buy read it with the event's
-- own values set) to mass message `q`, each part once: the purchase itself (counted, buyer
-- recorded) when its unlock or its transaction arrives, the gross amount from whichever carries
-- one first, net and fee from the transaction. Until the transaction arrives, net and fee are
-- estimated from the gross (fee_percent) and noted in est_net and est_fee, which the
-- transaction's exact amounts then replace: a lost transaction leaves an estimate, never a
-- purchase without net. What it credits is noted in `changes`.
--
-- A purchase the reconciler found first (reconcile_buyers.lua: the fan is already a buyer, with
-- estimated amounts in mbr:) is not counted again: its estimate becomes what was credited, and
-- the event's exact amounts correct it.
local function credit(q, b, changes)
  local sk = stats_key(q)
  local buyer = b[BUY_FAN] or fan
  if not b[COUNTED] then
    local reconciled = P .. 'mbr:' .. account .. ':' .. q
    local estimate = redis.call('HGET', reconciled, buyer)
    if estimate then
      local g, n, f = string.match(estimate, '^(%-?%d+):(%-?%d+):(%-?%d+)$')
      set_buy(b, changes, GROSS_DONE, g)
      set_buy(b, changes, EST_NET, n)
      set_buy(b, changes, EST_FEE, f)
      redis.call('HDEL', reconciled, buyer)
      -- Reconciliation dated the purchase when it found it; the event says when it was made.
      redis.call('ZADD', P .. 'mb:' .. account .. ':' .. q, 'LT', b[BUY_AT] or now, buyer)
    elseif redis.call('ZADD', P .. 'mb:' .. account .. ':' .. q, 'NX', b[BUY_AT] or now,
                      buyer) == 1 then
      add(q, 'purchases', 1)
    end
    set_buy(b, changes, COUNTED, '1')
  end
  -- gross_done holds the gross amount credited so far: the transaction's amount wins over the
  -- unlock's when both arrive (any difference is corrected once).
  local gross = b[TX_AMOUNT]
  if not gross and tonumber(b[UNLOCK_AMOUNT] or '0') > 0 then gross = b[UNLOCK_AMOUNT] end
  if gross and gross ~= b[GROSS_DONE] then
    local delta = tonumber(gross) - tonumber(b[GROSS_DONE] or '0')
    add(q, 'gross', delta)
    incr(P .. 'mbc:' .. account .. ':' .. q, buyer, delta)
    set_buy(b, changes, GROSS_DONE, gross)
  end
  if not b[NET_DONE] and b[TX_NET] then
    add(q, 'net', tonumber(b[TX_NET]) - tonumber(b[EST_NET] or '0'))
    add(q, 'fee', tonumber(b[TX_FEE] or '0') - tonumber(b[EST_FEE] or '0'))
    set_buy(b, changes, NET_DONE, '1')
  elseif not b[NET_DONE] and b[GROSS_DONE] then
    local credited = tonumber(b[GROSS_DONE])
    local fee = math.floor((credited * fee_percent + 50) / 100)
    local net_change = credited - fee - tonumber(b[EST_NET] or '0')
    local fee_change = fee - tonumber(b[EST_FEE] or '0')
    if net_change ~= 0 or fee_change ~= 0 then
      add(q, 'net', net_change)
      add(q, 'fee', fee_change)
      set_buy(b, changes, EST_NET, string.format('%d', credited - fee))
      set_buy(b, changes, EST_FEE, string.format('%d', fee))
    end
  end
  touch(sk)
end

-- A purchase of chat message `chat`: keep what it says (`fields`: BUY_FIELDS index -> value),
-- then credit it if the message's mass message is known (else messages.sent credits it when it
-- arrives). Returns that mass message's id, or false when it is not known (yet).
local function purchase(fields)
  local q, recipient = read_link()
  local b, changes = read_buy()
  for field, value in pairs(fields) do set_buy(b, changes, field, value) end
  -- The buyer: the fan the event names, else (a transaction without its fan object) the one the
  -- message was sent to, when known. The first event's stays, but fan 0 gives way to a fan a
  -- later event names until the purchase is credited, and stays once it is (the credit
  -- recorded that buyer).
  local named = fan
  if named == '0' and recipient then named = recipient end
  if not b[BUY_FAN] or (b[BUY_FAN] == '0' and named ~= '0' and not b[COUNTED]) then
    set_buy(b, changes, BUY_FAN, named)
  end
  if not b[BUY_AT] then
    -- Dated as the upstream says, never later than now (a clock ahead of Herald's).
    local at = arg(18)
    if at == '-1' or tonumber(at) > tonumber(now) then at = now end
    set_buy(b, changes, BUY_AT, at)
  end
  local from = n_added
  if q then credit(q, b, changes) end
  save_buy(changes)
  keep(from)
  redis.call('EXPIRE', buy_key(), link_ttl)
  return q
end

local function fan_data(subscribed)
  local spend = tonumber(arg(11))
  local since = tonumber(arg(12))
  -- A new subscription that does not say when it began began about now.
  if subscribed and since < 0 then since = tonumber(now) end
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

-- Applies the current event; returns its code (see the header).
local function apply()
  if not redis.call('SET', P .. 'ev:' .. arg(1), '1', 'NX', 'EX', dedupe_ttl) then return 0 end
  marked = true
  local code = tonumber(arg(2))
  local result = 1
  -- The mass message the event belongs to, for the stream: its own, or the one a purchase was
  -- credited to.
  local message = queue
  if code == 1 then
    local sk = stats_key(queue)
    local s = redis.call('HMGET', sk, 'done', 'pending', 'canceled')
    local pending = tonumber(arg(14))
    -- Progress only moves forward: an update that arrives after a later one changes nothing.
    -- An event without counts keeps the last known ones. A cancel is never taken back (an
    -- older update arriving late does not), and is kept even when it comes after the end.
    local canceled = arg(16)
    if s[3] == '1' then canceled = '1' end
    if s[1] ~= '1' and pending < 0 then
      redis.call('HSET', sk, 'done', arg(15), 'canceled', canceled, 'updated_ms', now,
                 'progress_ms', now)
    elseif s[1] ~= '1' and (not s[2] or pending <= tonumber(s[2])) then
      redis.call('HSET', sk, 'total', arg(13), 'pending', arg(14), 'done', arg(15),
                 'canceled', canceled, 'updated_ms', now, 'progress_ms', now)
    elseif s[1] ~= '1' and arg(15) == '1' then
      -- The end, with counts older than those known: it still ends the queue.
      redis.call('HSET', sk, 'done', '1', 'canceled', canceled, 'updated_ms', now,
                 'progress_ms', now)
    elseif canceled == '1' and s[3] ~= '1' then
      redis.call('HSET', sk, 'canceled', '1', 'updated_ms', now)
    end
  elseif code == 2 then
    if queue ~= '0' then
      add(queue, 'sent', 1)
      touch(stats_key(queue))
      if tonumber(arg(7)) > 0 and chat ~= '0' then
        local link = queue
        if fan ~= '0' then link = queue .. ':' .. fan end
        redis.call('SET', link_key(), link, 'EX', link_ttl)
        if redis.call('EXISTS', buy_key()) == 1 then  -- a purchase that arrived first
          local b, changes = read_buy()
          -- Its transaction may not have named the buyer: the recipient did buy it.
          if b[BUY_FAN] == '0' and fan ~= '0' and not b[COUNTED] then
            set_buy(b, changes, BUY_FAN, fan)
          end
          local from = n_added
          credit(queue, b, changes)
          save_buy(changes)
          keep(from)
        end
      end
    end
  elseif code == 5 then
    incr(account_key(), 'subscriptions', 1)
    fan_data(true)
  elseif code == 3 or code == 4 then
    if chat ~= '0' then
      local fields = { [UNLOCK_AMOUNT] = arg(8) }
      if code == 4 then
        -- A transaction without net and fee leaves them estimated, as an unlock does.
        fields = { [TX_AMOUNT] = arg(8) }
        if arg(9) ~= '-1' then
          fields[TX_NET], fields[TX_FEE] = arg(9), arg(10)
        end
      end
      local q = purchase(fields)
      if not q then
        result = 2
      elseif message == '0' then
        message = q
      end
    end
    fan_data()
  else
    fan_data()
  end
  if stream then
    redis.call('XADD', P .. 'events', 'MAXLEN', '~', stream_len, '*', 'type', arg(17),
               'account', account, 'message', message, 'chat', chat, 'fan', fan, 'price', arg(7),
               'amount', arg(8), 'at', now)
  end
  return result
end

local results = {}
for i = 1, count do
  base = 6 + (i - 1) * FIELDS
  account, queue, chat, fan = arg(3), arg(4), arg(5), arg(6)
  n_added, keep_from, keep_to, marked = 0, 0, -1, false
  local ok, result = pcall(apply)
  if ok then
    results[i] = result
  else
    -- What the event wrote before it failed stays, and so do the counters of a credit whose
    -- record it saved; what else it added to counters does not. Its sender is told it failed
    -- and sends it again, which is not taken for a duplicate (unless the failure was setting
    -- the dedupe key itself: the key, if any, is another delivery's).
    undo()
    if marked then redis.call('DEL', P .. 'ev:' .. arg(1)) end
    local message = type(result) == 'table' and result.err or tostring(result)
    results[i] = redis.error_reply(message .. ' (event ' .. i .. ' of the batch, ' .. arg(17) .. ')')
  end
end
flush()
return results
