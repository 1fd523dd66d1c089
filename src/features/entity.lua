-- Records that an account was seen on a shared entity (an IP, a device, a payment instrument)
-- and answers how many distinct accounts were seen on it in a window. One slot per entity.
--
-- KEYS[1] zset: account id scored by last-seen event time
-- KEYS[2] hash: marks that the member cap was reached (exists only then)
-- ARGV[1] JSON {ts, ttl, ret, cap, add?, from, max, ro}

local req = cjson.decode(ARGV[1])
local ts = req.ts
local akey, mkey = KEYS[1], KEYS[2]

local function fmt(n)
  return string.format('%.0f', n)
end

if req.ro ~= 1 and req.add then
  redis.call('ZADD', akey, 'GT', ts, req.add)
  local top = redis.call('ZRANGE', akey, -1, -1, 'WITHSCORES')
  redis.call('ZREMRANGEBYSCORE', akey, '-inf', (tonumber(top[2] or '0') or 0) - req.ret)

  local card = redis.call('ZCARD', akey)
  if card > req.cap then
    -- a shared NAT or a card-testing wave: keep the most recent accounts, and say so
    redis.call('ZREMRANGEBYRANK', akey, 0, card - req.cap - 1)
    redis.call('HSET', mkey, 'capped', fmt(ts))
    redis.call('PEXPIRE', mkey, req.ttl)
  end
  redis.call('PEXPIRE', akey, req.ttl)
end

local lo = '(' .. fmt(ts + req.from)
local n = redis.call('ZCOUNT', akey, lo, '+inf')
local ids = n > 0 and redis.call('ZREVRANGEBYSCORE', akey, '+inf', lo, 'LIMIT', 0, req.max) or {}
return cjson.encode({ n = n, ids = ids, capped = redis.call('EXISTS', mkey) })
