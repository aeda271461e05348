-- A watcher scope's lease and fencing token.
--
-- KEYS[1] lease key (holds the current token), KEYS[2] fence counter, KEYS[3] the scope's "alive" key
-- ARGV[1] op: "hold" (acquire, or renew the token in ARGV[3]) or "release"
-- ARGV[2] holder name ; ARGV[3] the caller's current token or "" ; ARGV[4] ttl in ms;
-- ARGV[5] ms the alive key lives (a few renewal periods)
--
-- The alive key holds the token too and is set on every hold, with a TTL of a few renewals: it
-- lapses as soon as the leader stops renewing, long before the lease does, so `podq status` and
-- the gauges show the scope leaderless at once (the lease itself still protects the handover).
--
-- A token is "<fence>:<holder>": the fence number only ever grows, so a token
-- handed out later always differs from every earlier one, and publish.lua
-- refuses a batch whose token is not the lease's current value.
-- Returns {1, token} when the caller holds the lease now, {0, holder's token or ""} otherwise.
local current = redis.call('GET', KEYS[1])
if ARGV[1] == 'release' then
  if current and current == ARGV[3] then
    redis.call('DEL', KEYS[1], KEYS[3])
    return {1, ''}
  end
  return {0, current or ''}
end
if current then
  if ARGV[3] ~= '' and current == ARGV[3] then
    redis.call('PEXPIRE', KEYS[1], ARGV[4])
    redis.call('SET', KEYS[3], current, 'PX', ARGV[5])
    return {1, current}
  end
  return {0, current}
end
local fence = redis.call('INCR', KEYS[2])
local token = fence .. ':' .. ARGV[2]
redis.call('SET', KEYS[1], token, 'PX', ARGV[4])
redis.call('SET', KEYS[3], token, 'PX', ARGV[5])
return {1, token}
