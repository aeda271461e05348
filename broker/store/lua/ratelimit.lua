-- A cluster's shared create budget hands out reservations (no polling): GCRA over a rate the
-- budget's controller moves (podq.workers.budget), with a shared pause for Retry-After.
-- KEYS[1] the budget hash {rate, pause_until, tat, limited_at, ...}
-- ARGV[1] the rate to use when the hash has none yet (creates/s, > 0); ARGV[2] burst;
-- ARGV[3] longest acceptable wait (s)
-- Time is the server's, so every worker shares one clock. Each slot is 1/rate after the one before
-- (the theoretical arrival time `tat`); up to `burst` slots may fall due at once after a quiet spell
-- (never more than a quarter second's worth of the rate), and none falls before `pause_until`.
-- A reservation that has to wait records `limited_at`: demand meets the budget (the controller
-- grows the rate only then).
-- Returns {granted (1/0), wait seconds, slot, rate} (numbers as strings; `slot` is the server's
-- epoch seconds + `wait`). Refused: the slot would be later than the longest acceptable wait;
-- nothing is taken and `wait` says how far off the next slot is.
local max_wait = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'rate', 'pause_until', 'tat')
local rate = tonumber(state[1]) or tonumber(ARGV[1])
local pause_until = tonumber(state[2]) or 0
local burst = math.max(1, math.min(tonumber(ARGV[2]), rate / 4))
local interval = 1 / rate
local tolerance = (burst - 1) * interval
local tat = math.max(tonumber(state[3]) or now, now)
if pause_until > now then
  tat = math.max(tat, pause_until + tolerance)
end
local slot = math.max(now, tat - tolerance)
local wait = slot - now
if wait > max_wait then
  return {0, tostring(wait), string.format('%.6f', slot), tostring(rate)}
end
-- Times to the microsecond: tostring's 14 digits keep only 0.1 ms of an epoch time.
redis.call('HSET', KEYS[1], 'tat', string.format('%.6f', tat + interval))
if wait > 0 then
  redis.call('HSET', KEYS[1], 'limited_at', string.format('%.6f', now))
end
return {1, tostring(wait), string.format('%.6f', slot), tostring(rate)}
