-- Records that an account was seen on a shared entity (an IP, a device, a payment instrument)
-- and answers how many distinct accounts were seen on it in a window. One slot per entity.
--
-- KEYS[1] zset: account id scored by last-seen event time
-- KEYS[2] hash: marks that the member cap was reached (exists only then)
-- ARGV    ts, read-only (1/0), retention ms, cap, account to add ('' for none),
--         window start relative to ts ('' for no answer), how many account ids to send back
-- Answers {n, capped (1/0), id...}: a flat array, no JSON to build or parse on either side.

local ts, readOnly, ret, cap = tonumber(ARGV[1]), ARGV[2] == '1', tonumber(ARGV[3]), tonumber(ARGV[4])
local add, from, max = ARGV[5], ARGV[6], tonumber(ARGV[7])
local akey, mkey = KEYS[1], KEYS[2]

local function fmt(n)
  return string.format('%.0f', n)
end

if not readOnly and add ~= '' then
  -- the arguments' own text where a number is only passed on: Redis 7.0 formats number arguments
  -- with snprintf, a noticeable part of a short script
  redis.call('ZADD', akey, 'GT', ARGV[1], add)
  local top = redis.call('ZRANGE', akey, '-1', '-1', 'WITHSCORES')
  redis.call('ZREMRANGEBYSCORE', akey, '-inf', (tonumber(top[2] or '0') or 0) - ret)

  local card = redis.call('ZCARD', akey)
  if card > cap then
    -- a shared NAT or a card-testing wave: keep the most recent accounts, and say so
    redis.call('ZREMRANGEBYRANK', akey, 0, card - cap - 1)
    redis.call('HSET', mkey, 'capped', fmt(ts))
    redis.call('PEXPIRE', mkey, ARGV[3])
  end
  redis.call('PEXPIRE', akey, ARGV[3])
end

if from == '' then return { 0, 0 } end
local lo = '(' .. fmt(ts + tonumber(from))
local n = redis.call('ZCOUNT', akey, lo, '+inf')
local reply = { n, redis.call('EXISTS', mkey) }
if n > 0 and max > 0 then
  for _, id in ipairs(redis.call('ZREVRANGEBYSCORE', akey, '+inf', lo, 'LIMIT', 0, max)) do
    table.insert(reply, id)
  end
end
return reply
