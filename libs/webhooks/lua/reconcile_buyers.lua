-- reconcile_buyers.lua: repairs a mass message's analytics from one page of the upstream's
-- buyers list, for purchases whose webhooks never arrived (the upstream drops events while it
-- pauses a failing endpoint).
--
-- KEYS[1]  the tenant's key prefix ("hd:{t:<tenant>}:")
-- ARGV[1]  account id        ARGV[2]  mass message id
-- ARGV[3]  the message's price (cents)
-- ARGV[4]  the platform's fee on that price (cents)
-- ARGV[5]  now (unix ms)
-- ARGV[6…] fan ids of buyers on this page
--
-- A fan who is not yet a buyer of the message is credited with the price as gross, price - fee
-- as net, and recorded in mbr: so that the purchase's own events, should they arrive later,
-- replace the estimate instead of counting the purchase again (apply_event.lua). Repeating a
-- page changes nothing. Returns the number of purchases added.
local P = KEYS[1]
local suffix = ARGV[1] .. ':' .. ARGV[2]
local stats = P .. 'mm:' .. suffix
local buyers = P .. 'mb:' .. suffix
local price = tonumber(ARGV[3])
local fee = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local added = 0
for i = 6, #ARGV do
  local fan = ARGV[i]
  if redis.call('ZADD', buyers, 'NX', now, fan) == 1 then
    added = added + 1
    redis.call('HINCRBY', P .. 'mbc:' .. suffix, fan, price)
    redis.call('HSET', P .. 'mbr:' .. suffix, fan, price .. ':' .. (price - fee) .. ':' .. fee)
  end
end
if added > 0 then
  for _, key in ipairs({ stats, P .. 'acct:' .. ARGV[1] }) do
    redis.call('HINCRBY', key, 'purchases', added)
    redis.call('HINCRBY', key, 'gross', added * price)
    redis.call('HINCRBY', key, 'net', added * (price - fee))
    redis.call('HINCRBY', key, 'fee', added * fee)
    redis.call('HINCRBY', key, 'reconciled', added)
  end
  redis.call('HSET', stats, 'updated_ms', now)
end
return added
