-- create.lua: adds a record to a table (a hash of id -> JSON) unless it exists, idempotently,
-- once the records it refers to are found, with rows of other tables and a counter in the same
-- atomic step; then reads what the caller asked for. Runs after tables.lua.
--
-- KEYS[1]  the table (HASH id -> record JSON)
-- KEYS[2]  the request-id key (STRING -> id), or KEYS[1] again when the create has no request id
-- KEYS[3]  an index (ZSET of ids by ARGV[5]), or KEYS[1] again when the table has none
-- KEYS[4]  a counter (STRING) bumped once when the record is created, or KEYS[1] again for none
-- KEYS[5 .. 4+W]        W tables (HASH id -> JSON) that receive rows when the record is created
-- KEYS[5+W .. 4+W+D]    D tables read after the write, whatever the outcome
-- KEYS[5+W+D .. 4+W+D+R]  R tables of references, read before the write
-- KEYS[5+W+D+R]         with F > 0: the table followed from the references (see ARGV[9])
-- KEYS[#KEYS]           last: the request's fingerprint key (STRING), or KEYS[1] again when the
--                       create has no request id. The request-id key holds the id alone, as it
--                       always has, so that every Herald reads it alike; the fingerprint beside
--                       it is for the Heralds that compare them.
-- ARGV[1]  record id
-- ARGV[2]  record JSON
-- ARGV[3]  "1" when KEYS[2] is a request-id key
-- ARGV[4]  request-id key lifetime, seconds
-- ARGV[5]  index score (when KEYS[3] is an index)
-- ARGV[6]  W
-- ARGV[7]  D
-- ARGV[8]  R
-- ARGV[9]  F: 0, or the position (1-based) of a reference table whose documents name, in their
--          top-level string field ARGV[10], ids of the followed table to read after the write
-- ARGV[10] that field
-- ARGV[11] the request's fingerprint (what a retry repeats unchanged; "" when unknown)
-- then, for each of the W tables in order: a count n and n pairs (id, JSON);
-- then, for each table read in order: a count m and m ids;
-- then, for each table of references in order: a count m and m ids.
--
-- Returns {code, json, revision, reads, references, followed}: code 0 created (json: false, the
-- caller has it); 1 replay of an earlier create with this request id (json: that record, or false
-- if it was deleted since); 2 an id already exists and the request id is new (json: false); 3 a
-- reference is absent (json: false); 4 the request id was used by a request with another
-- fingerprint (json: the id that request made). Nothing changes unless code is 0, but for a
-- replay's renewal of the request id's lifetime; a replay is found before the references are
-- checked. revision: KEYS[4]'s new value when bumped, else 0. reads and
-- references: per table, the JSON of each id in order (false when absent). followed: when code
-- is 0 and F > 0, the JSON (or false) of each id the followed field names (a string at the top
-- level of a reference that is a JSON object), each once, in the order first named; else empty.
-- Complexity: O(log n) in the index, plus O(1) per row written and per id read, plus the decoding
--   of each followed reference.
local W, D, R, F = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local READS_KEY = 5 + W
local REFERENCES_KEY = READS_KEY + D
local reads_at = skip_rows(W, 12)
local references = read_lookups(REFERENCES_KEY, R, skip_lookups(D, reads_at))

local function all_found()
  for _, docs in ipairs(references) do
    for _, doc in ipairs(docs) do
      if not doc then return false end
    end
  end
  return true
end

local function write_outcome()
  local has_request = ARGV[3] == '1'
  if has_request then
    local prior = redis.call('GET', KEYS[2])
    if prior then
      -- A request id recorded without a fingerprint matches any request.
      local fingerprint = redis.call('GET', KEYS[#KEYS])
      if fingerprint and ARGV[11] ~= '' and fingerprint ~= ARGV[11] then return 4, prior, 0 end
      -- A replay renews the request id's lifetime. It is a write of this call, so the WAIT
      -- behind a replicated create covers it and, replication keeping order, the record the
      -- first request wrote: a retry answered after its first attempt's WAIT timed out says
      -- "created" only once that record has reached the replicas.
      redis.call('EXPIRE', KEYS[2], ARGV[4])
      if fingerprint then redis.call('EXPIRE', KEYS[#KEYS], ARGV[4]) end
      return 1, redis.call('HGET', KEYS[1], prior), 0
    end
  end
  if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
    return 2, false, 0
  end
  if not all_found() then return 3, false, 0 end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  if KEYS[3] ~= KEYS[1] then
    redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
  end
  write_rows(5, W, 12)
  local revision = 0
  if KEYS[4] ~= KEYS[1] then revision = redis.call('INCR', KEYS[4]) end
  if has_request then
    redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[4])
    if ARGV[11] ~= '' then redis.call('SET', KEYS[#KEYS], ARGV[11], 'EX', ARGV[4]) end
  end
  return 0, false, revision
end

local function follow()
  local ids, seen = {}, {}
  for _, doc in ipairs(references[F]) do
    local decoded, fields = pcall(cjson.decode, doc)
    local id = decoded and type(fields) == 'table' and fields[ARGV[10]]
    if type(id) == 'string' and not seen[id] then
      seen[id] = true
      ids[#ids + 1] = id
    end
  end
  return hmget(KEYS[REFERENCES_KEY + R], ids, 1, #ids)
end

local code, json, revision = write_outcome()
local followed = {}
if code == 0 and F > 0 then followed = follow() end

return {code, json, revision, (read_lookups(READS_KEY, D, reads_at)), references, followed}
