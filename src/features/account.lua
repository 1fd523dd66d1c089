-- Applies one event's changes to one account's features and answers the signals' questions,
-- in one round trip. Every key is under the account's hash tag, so this touches one slot.
--
-- KEYS[1] h  hash: watermark, context, last logins, observations, open flags
-- KEYS[2] v  zset: distinct values "<kind>:<value>" scored by last-seen event time
-- KEYS[3] s  zset: sessions "<sessionId>|<lat>|<lon>|<eventId>" scored by start time, and
--             logouts "!<sessionId>" scored by logout time
-- KEYS[4] c  hash: contract records by contract id (JSON)
-- KEYS[5] n  zset: first-seen event time of values whose novelty matters (country, device)
-- KEYS[6..] one zset per event kind, in the order of req.ek; member = event id, score = event time
-- ARGV[1] the request as JSON (see store.ts)
--
-- Idempotent by construction: sets keyed by event id or value, context fields that only move
-- forward in event time, merges that take min/max. Replaying an event changes nothing.

local req = cjson.decode(ARGV[1])
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
local wm = tonumber(redis.call('HGET', hkey, 'wm') or '0') or 0
local wf = req.wf and (tonumber(redis.call('HGET', hkey, req.wf) or '0') or 0) or wm
-- a read "as of now" measures windows from the account's latest event time
local ts = (req.ts < 0 and wm > 0) and wm or math.abs(req.ts)
local late = wf > 0 and ts < wf - req.lat
local anchor = math.max(wm, ts)
local lastSeen = {}
local touchedE, touchedV, touchedS, touchedC, touchedH = {}, false, false, false, false

if not readOnly then
  -- only windowed changes move the watermark: a review outcome or a flag write is not activity
  if req.w == 1 and not late then
    if ts > wm then redis.call('HSET', hkey, 'wm', fmt(ts)) end
    if req.wf and ts > wf then redis.call('HSET', hkey, req.wf, fmt(ts)) end
  end
  touchedH = true
end

for _, op in ipairs(req.ops or {}) do
  local t = op[1]
  if readOnly and t ~= 'V' then
    -- a read changes nothing; value ops in a read only report when the value was last/first seen
  elseif t == 'E' then
    if not late then
      redis.call('ZADD', ekey[op[2]], ts, op[3])
      touchedE[op[2]] = true
    end
  elseif t == 'V' then
    local member = op[2] .. ':' .. op[3]
    local prev = redis.call('ZSCORE', vkey, member)
    local first = op[4] == 1 and redis.call('ZSCORE', nkey, member) or false
    table.insert(lastSeen, { prev and tonumber(prev) or -1, first and tonumber(first) or -1 })
    if not late and not readOnly then

      -- GT: an out-of-order event never moves last-seen backwards; LT: nor first-seen forwards
      redis.call('ZADD', vkey, 'GT', ts, member)
      if op[4] == 1 then
        redis.call('ZADD', nkey, 'LT', ts, member)
        redis.call('PEXPIRE', nkey, req.ttl)
      end
      touchedV = true
    end
  elseif t == 'S' then
    -- a logout leaves "!<sessionId>" scored by its time (ids never contain "!"): a start at or
    -- before it is over, whether it arrives before the logout, after it, or again in a replay
    local ended = redis.call('ZSCORE', skey, '!' .. string.match(op[2], '^[^|]*'))
    if not late and not (ended and tonumber(ended) >= ts) then
      redis.call('ZADD', skey, 'GT', ts, op[2])
      touchedS = true
    end
  elseif t == 'SX' then
    local prefix = op[2] .. '|'
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', skey, '-inf', fmt(ts))) do
      if string.sub(m, 1, #prefix) == prefix then
        redis.call('ZREM', skey, m)
      end
    end
    if not late then
      redis.call('ZADD', skey, 'GT', ts, '!' .. op[2])
      touchedS = true
    end
  elseif t == 'X' then
    -- context: the value with the latest event time wins, whatever the arrival order
    local field = op[2]
    if ts >= stampOf(redis.call('HGET', hkey, field)) then
      redis.call('HSET', hkey, field, fmt(ts) .. '|' .. op[3])
    end
  elseif t == 'L' then
    -- successful login: keep the latest and the one before it (for impossible travel)
    local cur = redis.call('HGET', hkey, 'll')
    if ts > stampOf(cur) then
      if cur then
        redis.call('HSET', hkey, 'lp', cur)
      end
      redis.call('HSET', hkey, 'll', fmt(ts) .. '|' .. op[2])
    end
  elseif t == 'K' then
    local cur = redis.call('HGET', ckey, op[2])
    local rec = cur and cjson.decode(cur) or {}
    for k, val in pairs(op[3]) do
      if k == 's' or k == 'fp' then
        rec[k] = rec[k] and math.min(rec[k], val) or val
      elseif k == 'lp' or k == 'd' or k == 'e' then
        rec[k] = rec[k] and math.max(rec[k], val) or val
      else
        rec[k] = val
      end
    end
    redis.call('HSET', ckey, op[2], encodeSorted(rec))
    redis.call('ZADD', vkey, 'GT', ts, 'k:' .. op[2])
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
  elseif t == 'FS' then
    redis.call('HSET', hkey, 'f:' .. op[2], op[3] .. '|' .. op[4])
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
  local card = redis.call('ZCARD', key)
  if card > cap then
    if onDrop then
      for _, m in ipairs(redis.call('ZRANGE', key, 0, card - cap - 1)) do onDrop(m) end
    end
    redis.call('ZREMRANGEBYRANK', key, 0, card - cap - 1)
    redis.call('HSET', hkey, 'cap:' .. marker, fmt(anchor))
  end
end
-- a value forgotten from v is forgotten everywhere: its contract record, its first sighting
local function dropValue(m)
  if string.sub(m, 1, 2) == 'k:' then redis.call('HDEL', ckey, string.sub(m, 3)) end
  redis.call('ZREM', nkey, m)
end

-- Trimming is measured from the newest member of each set, not from whichever event happened to
-- arrive last, so the same events give the same stored sets in any arrival order.
local function newest(key)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  return tonumber(top[2] or '0') or 0
end

if not readOnly then
  for kind, _ in pairs(touchedE) do
    local key = ekey[kind]
    redis.call('ZREMRANGEBYSCORE', key, '-inf', newest(key) - req.ret[kind])
    capSet(key, req.cap.e, 'e:' .. kind, nil)
    redis.call('PEXPIRE', key, req.ttl)
  end
  if touchedV then
    local horizon = newest(vkey) - req.ret.v
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', vkey, '-inf', horizon)) do dropValue(m) end
    redis.call('ZREMRANGEBYSCORE', vkey, '-inf', horizon)
    capSet(vkey, req.cap.v, 'v', dropValue)
    redis.call('PEXPIRE', vkey, req.ttl)
  end
  if touchedS then
    redis.call('ZREMRANGEBYSCORE', skey, '-inf', newest(skey) - req.ret.s)

    capSet(skey, req.cap.s, 's', nil)
    redis.call('PEXPIRE', skey, req.ttl)
  end
  if touchedC then redis.call('PEXPIRE', ckey, req.ttl) end
  if touchedH then redis.call('PEXPIRE', hkey, req.ttl) end
end

-- Answer the questions, after the changes, relative to the event's own time.
local answers = {}
for _, q in ipairs(req.q or {}) do
  local t = q[1]
  if t == 'C' then
    local key = ekey[q[2]]
    local lo, hi = '(' .. fmt(ts + q[3]), fmt(ts + q[4])
    local n = redis.call('ZCOUNT', key, lo, hi)
    local ids = n > 0 and redis.call('ZREVRANGEBYSCORE', key, hi, lo, 'LIMIT', 0, q[5]) or {}
    table.insert(answers, { n, ids })
  elseif t == 'D' then
    local prefix = q[2] .. ':'
    local n, values = 0, {}
    for _, m in ipairs(redis.call('ZREVRANGEBYSCORE', vkey, '+inf', '(' .. fmt(ts + q[3]))) do
      if string.sub(m, 1, #prefix) == prefix then
        n = n + 1
        if n <= q[4] then table.insert(values, string.sub(m, #prefix + 1)) end
      end
    end
    table.insert(answers, { n, values })
  elseif t == 'SS' then
    local open = {}
    local all = redis.call('ZREVRANGEBYSCORE', skey, '+inf', '(' .. fmt(ts + q[2]), 'WITHSCORES')
    for i = 1, #all, 2 do
      if string.sub(all[i], 1, 1) ~= '!' then
        table.insert(open, all[i])
        table.insert(open, all[i + 1])
      end
    end
    table.insert(answers, open)
  elseif t == 'K' then
    table.insert(answers, redis.call('HGETALL', ckey))
  end
end

return cjson.encode({
  ts = ts,
  late = late and 1 or 0,
  wm = (readOnly or late) and wm or math.max(wm, ts),
  ls = lastSeen,
  a = answers,
  h = redis.call('HGETALL', hkey),
})
