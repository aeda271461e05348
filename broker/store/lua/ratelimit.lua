-- A cluster-wide token bucket that hands out reservations (no polling).
-- KEYS[1] bucket hash {tokens, ts}
-- ARGV[1] rate (tokens per second, > 0); ARGV[2] burst; ARGV[3] longest acceptable wait (s)
-- Time is the server's, so every worker shares one clock.
-- Returns {granted (1/0), wait seconds, slot} (numbers as strings; `slot` is the server's epoch
-- seconds + `wait`). Granted: the caller may act after `wait` seconds (its slot). Refused: the
-- slot would be later than the longest acceptable wait; nothing is taken and `wait` says how
-- far off the next slot is.
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
tokens = tokens - 1
local wait = 0
if tokens < 0 then
  wait = -tokens / rate
end
if wait > max_wait then
  return {0, tostring(wait), string.format('%.6f', now + wait)}
end
-- Times to the microsecond: tostring's 14 digits keep only 0.1 ms of an epoch time, and each
-- rounding of `ts` could let a refill count up to 0.05 ms × rate tokens too many.
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', string.format('%.6f', ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(((burst - tokens) / rate + 1) * 1000))
return {1, tostring(wait), string.format('%.6f', now + wait)}
