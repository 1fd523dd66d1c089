-- Applies one event's changes to one account's features and answers the signals' questions,
-- in one round trip. Every key is under the account's hash tag, so this touches one slot.
--
-- KEYS[1] h  hash: watermark, context, last logins, open sessions' details, observations, open flags
-- KEYS[2] v  zset: distinct values "<kind>:<value>" scored by last-seen event time
-- KEYS[3] s  zset: sessions "<sessionId>" scored by start time (their "<lat>|<lon>|<eventId>" is
--             in h under "s:<sessionId>"), and logouts "!<sessionId>" scored by logout time
-- KEYS[4] c  hash: contract records by contract id (JSON)
-- KEYS[5] n  zset: first-seen event time of values whose novelty matters (country, device)
-- KEYS[6..] one zset per event kind the call touches, in the order of req.ek; member = event id,
--            score = event time
-- ARGV[1] the request as JSON (see store.ts); the answer: see the end
--
-- Idempotent by construction: sets keyed by event id or value, context fields that only move
-- forward in event time, merges that take min/max. Replaying an event changes nothing.

local req = cjson.decode(ARGV[1])
-- retention by set and caps: store.ts pastes the configuration's values in (accountLayoutLua)
local layout = LAYOUT_LITERAL
local readOnly = req.ro == 1
local hkey, vkey, skey, ckey, nkey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

local function fmt(n)
  return string.format('%.0f', n)
end

local ekey = {}
for i = 1, #req.ek do
  ekey[string.sub(req.ek, i, i)] = KEYS[5 + i]
end

-- A JSON object with its keys in sorted order. cjson writes keys in the Lua table's internal
-- order, which depends on how the table was built: the same contract record, merged from the same
-- patches in another order (or decoded and written back by a replay), would get different bytes.
local function encodeSorted(rec)
  local keys = {}
  for k in pairs(rec) do table.insert(keys, k) end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = cjson.encode(k) .. ':' .. cjson.encode(rec[k]) end
  return '{' .. table.concat(parts, ',') .. '}'
end

local function stampOf(packed)
  if not packed then return -1 end
  return tonumber(string.match(packed, '^(%-?%d+)|')) or -1
end

-- One watermark per family: one family's events of an account come from one partition, in
-- order, so lateness is judged within it. Families are consumed independently and may lag each
-- other by far more than the lateness (a backlog after an outage) without any event being late.
-- one read for the watermarks and the latest login (the login op needs it)
local head = redis.call('HMGET', hkey, 'wm', req.wf or 'wm', 'll')
local wm = tonumber(head[1] or '0') or 0
local wf = req.wf and (tonumber(head[2] or '0') or 0) or wm
local latestLogin = head[3]
-- a read "as of now" measures windows from the account's latest event time
local ts = (req.ts < 0 and wm > 0) and wm or math.abs(req.ts)
-- Redis 7.0 turns every number argument of redis.call into text with snprintf("%.17g"): about a
-- tenth of this script's time went to number formatting. So the event time goes as the text
-- made once here, and constant arguments are written as text.
local tsText = fmt(ts)
local late = wf > 0 and ts < wf - layout.lat
local anchor = math.max(wm, ts)
-- An event older than the value retention (measured from the newest value, as trimming is) must
-- not write values, first sightings or contract records. Arriving first, what it wrote was
-- trimmed at once; arriving (or replayed) after a newer event of the same value or contract, it
-- merged into what that event wrote: two results for the same events, depending on arrival
-- order, and a replay that changed features (found by test/faults/properties.test.ts).
local beyondValueRetention
local function staleForValues()
  if beyondValueRetention == nil then
    local top = redis.call('ZRANGE', vkey, '-1', '-1', 'WITHSCORES')
    beyondValueRetention = top[2] ~= nil and ts <= tonumber(top[2]) - layout.ret.v
  end
  return beyondValueRetention
end
local lastSeen = {}
local results = {}
local touchedE, touchedV, touchedS, touchedC, touchedH = {}, false, false, false, false

if not readOnly then
  -- only windowed changes move the watermark: a review outcome or a flag write is not activity
  if req.w == 1 and not late then
    if ts > wm and req.wf and ts > wf then
      redis.call('HSET', hkey, 'wm', tsText, req.wf, tsText)
    elseif ts > wm then
      redis.call('HSET', hkey, 'wm', tsText)
    elseif req.wf and ts > wf then
      redis.call('HSET', hkey, req.wf, tsText)
    end
  end
  touchedH = true
end

-- Value ops, all at once: when each value was last (and first) seen before this event, then the
-- event's sighting. GT: an out-of-order event never moves last-seen backwards; LT: nor first-seen
-- forwards. Reads are taken before writes, so two ops of one event do not see each other.
local seen, tracked = {}, {}
for _, op in ipairs(req.ops or {}) do
  if op[1] == 'V' then
    local member = op[2] .. ':' .. op[3]
    table.insert(seen, member)
    if op[4] == 1 then table.insert(tracked, member) end
  end
end
if #seen > 0 then
  local last = redis.call('ZMSCORE', vkey, unpack(seen))
  local firstOf = {}
  if #tracked > 0 then
    local first = redis.call('ZMSCORE', nkey, unpack(tracked))
    for i, m in ipairs(tracked) do firstOf[m] = first[i] end
  end
  for i, m in ipairs(seen) do
    local f = firstOf[m]
    table.insert(lastSeen, { last[i] and tonumber(last[i]) or -1, f and tonumber(f) or -1 })
  end
  if not late and not readOnly and not staleForValues() then
    local args = {}
    for _, m in ipairs(seen) do
      table.insert(args, tsText)
      table.insert(args, m)
    end
    redis.call('ZADD', vkey, 'GT', unpack(args))
    touchedV = true
    if #tracked > 0 then
      args = {}
      for _, m in ipairs(tracked) do
        table.insert(args, tsText)
        table.insert(args, m)
      end
      redis.call('ZADD', nkey, 'LT', unpack(args))
      redis.call('PEXPIRE', nkey, layout.ttl)
    end
  end
end

for _, op in ipairs(req.ops or {}) do
  local t = op[1]
  if readOnly or t == 'V' then
    -- a read changes nothing; value ops were applied above
  elseif t == 'E' then
    if not late then
      -- LT: one event id at two times (a producer reusing an id) keeps the earliest, in any order
      redis.call('ZADD', ekey[op[2]], 'LT', tsText, op[3])
      touchedE[op[2]] = true
    end
  elseif t == 'S' then
    -- The set keeps only the session id: a member over 64 bytes would turn the whole set from a
    -- compact listpack into a skiplist of about 1 KB. A logout leaves "!<sessionId>" scored by its
    -- time (ids never contain "!"): a start at or before it is over, whether it arrives before the
    -- logout, after it, or again in a replay. The latest start of a session id wins.
    local score = redis.call('ZMSCORE', skey, op[2], '!' .. op[2])
    local started, ended = score[1] and tonumber(score[1]), score[2] and tonumber(score[2])
    if not late and not (ended and ended >= ts) and not (started and started > ts) then
      if not started and redis.call('EXISTS', skey) == 0 then
        -- the set expired while the hash lived on: forget the details it left behind
        local all = redis.call('HKEYS', hkey)
        for _, f in ipairs(all) do
          if string.sub(f, 1, 2) == 's:' then redis.call('HDEL', hkey, f) end
        end
      end
      redis.call('ZADD', skey, tsText, op[2])
      redis.call('HSET', hkey, 's:' .. op[2], op[3])
      touchedS = true
    end
  elseif t == 'SX' then
    local started = redis.call('ZSCORE', skey, op[2])
    if started and tonumber(started) <= ts then
      redis.call('ZREM', skey, op[2])
      redis.call('HDEL', hkey, 's:' .. op[2])
    end
    if not late then
      redis.call('ZADD', skey, 'GT', tsText, '!' .. op[2])
      touchedS = true
    end
  elseif t == 'X' then
    -- context: the value with the latest event time wins, whatever the arrival order
    local field = op[2]
    if ts >= stampOf(redis.call('HGET', hkey, field)) then
      redis.call('HSET', hkey, field, tsText .. '|' .. op[3])
    end
  elseif t == 'L' then
    -- successful login: keep the latest and the one before it (for impossible travel)
    local cur = latestLogin
    if ts > stampOf(cur) then
      if cur then
        redis.call('HSET', hkey, 'll', tsText .. '|' .. op[2], 'lp', cur)
      else
        redis.call('HSET', hkey, 'll', tsText .. '|' .. op[2])
      end
      latestLogin = tsText .. '|' .. op[2]
    end

  elseif t == 'K' and staleForValues() then
    -- beyond the value retention: changes nothing (see staleForValues)
  elseif t == 'K' then
    local cur = redis.call('HGET', ckey, op[2])
    local rec = cur and cjson.decode(cur) or {}
    local patch = op[3]
    -- The end's event id and rating are those of the latest end (then the greater id and
    -- rating), not of whichever ENDED event arrived last: both sides may end a contract, on two
    -- partitions, and a replay must not bring back the other one (found by
    -- test/faults/properties.test.ts).
    if patch.ee ~= nil or patch.rt ~= nil or patch.e ~= nil then
      local function later(a, b)
        if (a.e or -1) ~= (b.e or -1) then return (a.e or -1) > (b.e or -1) end
        if (a.ee or '') ~= (b.ee or '') then return (a.ee or '') > (b.ee or '') end
        return (a.rt or -1) > (b.rt or -1)
      end
      if later(patch, rec) then rec.ee, rec.rt = patch.ee, patch.rt end
    end
    for k, val in pairs(patch) do
      if k == 's' or k == 'fp' then
        rec[k] = rec[k] and math.min(rec[k], val) or val
      elseif k == 'lp' or k == 'd' or k == 'e' then
        rec[k] = rec[k] and math.max(rec[k], val) or val
      elseif k ~= 'ee' and k ~= 'rt' then
        rec[k] = val
      end
    end
    redis.call('HSET', ckey, op[2], encodeSorted(rec))
    redis.call('ZADD', vkey, 'GT', tsText, 'k:' .. op[2])
    touchedC, touchedV = true, true
  elseif t == 'O' then
    -- observations, one field per signal "<observedAt>|<json>". One replaces the stored one only
    -- if it brings evidence the stored one lacks: seeing the same events again, in any order
    -- (a replay, another topic consumed first), changes nothing.
    for _, o in ipairs(op[2]) do
      local field = 'o:' .. o[1]
      local cur = redis.call('HGET', hkey, field)
      local replace = not cur
      if cur then
        local known = {}
        local stored = cjson.decode(string.sub(cur, string.find(cur, '|', 1, true) + 1))
        for _, id in ipairs(stored.evidenceEventIds or {}) do known[id] = true end
        for _, id in ipairs(o[4]) do
          if not known[id] then replace = true end
        end
      end
      if replace then
        redis.call('HSET', hkey, field, fmt(o[2]) .. '|' .. o[3])
      end
    end

    local horizon = anchor - op[3]
    local all = redis.call('HGETALL', hkey)
    for i = 1, #all, 2 do
      if string.sub(all[i], 1, 2) == 'o:' and stampOf(all[i + 1]) <= horizon then
        redis.call('HDEL', hkey, all[i])
      end
    end
  elseif t == 'FCLAIM' or t == 'FS' then
    -- Open flags change by compare-and-set on the revision, so two batches deciding about one
    -- account at once (two families, two instances) can never both emit the same revision:
    -- FCLAIM (queue, flagId, json, expected current revision) claims the next revision;
    -- FS (queue, flagId, json, revision) confirms it once the flag is on the topic.
    local cur = redis.call('HGET', hkey, 'f:' .. op[2])
    local rev, id = 0, nil
    if cur then
      local bar = string.find(cur, '|', 1, true)
      id = string.sub(cur, 1, bar - 1)
      rev = cjson.decode(string.sub(cur, bar + 1)).revision or 0
    end
    local ok
    if t == 'FCLAIM' then ok = rev == op[5] else ok = rev == op[5] and id == op[3] end
    if ok then redis.call('HSET', hkey, 'f:' .. op[2], op[3] .. '|' .. op[4]) end
    table.insert(results, ok and 1 or 0)
  elseif t == 'FC' then
    -- closing is idempotent: only the flag that is open now can be closed, once
    local cur = redis.call('HGET', hkey, 'f:' .. op[2])
    if cur and string.sub(cur, 1, #op[3] + 1) == op[3] .. '|' then
      redis.call('HDEL', hkey, 'f:' .. op[2])
      redis.call('HINCRBY', hkey, 'g:' .. op[2], 1)
    end
  elseif t == 'CL' then
    local field = 'clr:' .. op[2]
    local cur = tonumber(redis.call('HGET', hkey, field) or '0') or 0
    if op[3] > cur then
      redis.call('HSET', hkey, field, fmt(op[3]))
    end
  end
end

-- Bound every key: drop what no window can see, cap what could grow without bound, expire.
local function capSet(key, cap, marker, onDrop)
  local dropped
  if onDrop then
    local card = redis.call('ZCARD', key)
    dropped = card > cap
    if dropped then
      for _, m in ipairs(redis.call('ZRANGE', key, 0, card - cap - 1)) do onDrop(m) end
      redis.call('ZREMRANGEBYRANK', key, 0, card - cap - 1)
    end
  else
    -- the event-kind sets: keeps the newest cap.e members in one call (keepE is -cap.e - 1, as
    -- text); says how many it dropped
    dropped = redis.call('ZREMRANGEBYRANK', key, '0', layout.keepE) > 0
  end
  if dropped then redis.call('HSET', hkey, 'cap:' .. marker, fmt(anchor)) end
end
-- a value forgotten from v is forgotten everywhere: its contract record, its first sighting
local function dropValue(m)
  if string.sub(m, 1, 2) == 'k:' then redis.call('HDEL', ckey, string.sub(m, 3)) end
  redis.call('ZREM', nkey, m)
end

-- Trimming is measured from the newest member of each set, not from whichever event happened to
-- arrive last, so the same events give the same stored sets in any arrival order.
local function newest(key)
  local top = redis.call('ZRANGE', key, '-1', '-1', 'WITHSCORES')
  return tonumber(top[2] or '0') or 0
end

if not readOnly then
  for kind, _ in pairs(touchedE) do
    local key = ekey[kind]
    redis.call('ZREMRANGEBYSCORE', key, '-inf', newest(key) - layout.ret[kind])
    capSet(key, layout.cap.e, 'e:' .. kind, nil)
    redis.call('PEXPIRE', key, layout.ttl)
  end
  if touchedV then
    local horizon = newest(vkey) - layout.ret.v
    local oldest = redis.call('ZRANGE', vkey, '0', '0', 'WITHSCORES')
    if oldest[2] and tonumber(oldest[2]) <= horizon then
      for _, m in ipairs(redis.call('ZRANGEBYSCORE', vkey, '-inf', horizon)) do dropValue(m) end
      redis.call('ZREMRANGEBYSCORE', vkey, '-inf', horizon)
    end

    capSet(vkey, layout.cap.v, 'v', dropValue)
    redis.call('PEXPIRE', vkey, layout.ttl)
  end
  if touchedS then
    -- a session forgotten from s is forgotten from h
    local function dropSession(m)
      if string.sub(m, 1, 1) ~= '!' then redis.call('HDEL', hkey, 's:' .. m) end
    end
    local horizon = newest(skey) - layout.ret.s
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', skey, '-inf', horizon)) do dropSession(m) end
    redis.call('ZREMRANGEBYSCORE', skey, '-inf', horizon)
    capSet(skey, layout.cap.s, 's', dropSession)
    redis.call('PEXPIRE', skey, layout.ttl)
  end
  if touchedC then redis.call('PEXPIRE', ckey, layout.ttl) end
  if touchedH then redis.call('PEXPIRE', hkey, layout.ttl) end
end

-- Answer the questions, after the changes, relative to the event's own time. Distinct-value
-- questions share one read of the value set per window start.
local answers = {}
local valuesSince = {}
for _, q in ipairs(req.q or {}) do
  local t = q[1]
  if t == 'C' then
    local key = ekey[q[2]]
    local lo, hi = '(' .. fmt(ts + q[3]), fmt(ts + q[4])
    local n = redis.call('ZCOUNT', key, lo, hi)
    local ids = (n > 0 and q[5] > 0) and redis.call('ZREVRANGEBYSCORE', key, hi, lo, 'LIMIT', 0, q[5]) or {}
    table.insert(answers, { n, ids })
  elseif t == 'D' then
    local prefix = q[2] .. ':'
    local n, values = 0, {}
    local since = valuesSince[q[3]]
    if not since then
      since = redis.call('ZREVRANGEBYSCORE', vkey, '+inf', '(' .. fmt(ts + q[3]))
      valuesSince[q[3]] = since
    end
    for _, m in ipairs(since) do
      if string.sub(m, 1, #prefix) == prefix then
        n = n + 1
        if n <= q[4] then table.insert(values, string.sub(m, #prefix + 1)) end
      end
    end
    table.insert(answers, { n, values })
  elseif t == 'SS' then
    -- "<sessionId>|<lat>|<lon>|<eventId>", start time: the session ids with their details
    local open, started, fields = {}, {}, {}
    local all = redis.call('ZREVRANGEBYSCORE', skey, '+inf', '(' .. fmt(ts + q[2]), 'WITHSCORES')
    for i = 1, #all, 2 do
      if string.sub(all[i], 1, 1) ~= '!' then
        table.insert(started, i)
        table.insert(fields, 's:' .. all[i])
      end
    end
    if #fields > 0 then
      local details = redis.call('HMGET', hkey, unpack(fields))
      for j, i in ipairs(started) do
        if details[j] then
          table.insert(open, all[i] .. '|' .. details[j])
          table.insert(open, all[i + 1])
        end
      end
    end
    table.insert(answers, open)
  elseif t == 'K' then
    table.insert(answers, redis.call('HGETALL', ckey))
  end
end

-- Only the parts of the hash the caller asked for ("ll", or "o:*" for a prefix); all if unsaid.
local hash
if req.hf then
  hash = {}
  local exact, prefixes = {}, {}
  for _, f in ipairs(req.hf) do
    if string.sub(f, -1) == '*' then table.insert(prefixes, string.sub(f, 1, -2)) else exact[f] = true end
  end
  if #prefixes > 0 then
    local all = redis.call('HGETALL', hkey)
    for i = 1, #all, 2 do
      local keep = exact[all[i]]
      for _, p in ipairs(prefixes) do
        if string.sub(all[i], 1, #p) == p then keep = true end
      end
      if keep then
        table.insert(hash, all[i])
        table.insert(hash, all[i + 1])
      end
    end
  else
    local names = {}
    for f, _ in pairs(exact) do table.insert(names, f) end
    if #names > 0 then
      local vals = redis.call('HMGET', hkey, unpack(names))
      for i, f in ipairs(names) do
        if vals[i] then
          table.insert(hash, f)
          table.insert(hash, vals[i])
        end
      end
    end
  end
else
  hash = redis.call('HGETALL', hkey)
end

-- A nested array, not JSON: nothing to encode here or parse in Node (the time inside the script
-- did not measurably change). Every entry is a whole number, a string or an array; none is nil
-- (that would end it).
return {
  ts,
  late and 1 or 0,
  (readOnly or late) and wm or math.max(wm, ts),
  lastSeen,
  answers,
  hash,
  results,
}


