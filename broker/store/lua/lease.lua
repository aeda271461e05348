-- A watcher scope's lease and fencing token.
--
-- KEYS[1] lease key (holds the current token), KEYS[2] fence counter
-- ARGV[1] op: "hold" (acquire, or renew the token in ARGV[3]) or "release"
-- ARGV[2] holder name ; ARGV[3] the caller's current token or "" ; ARGV[4] ttl in ms
--
-- A token is "<fence>:<holder>": the fence number only ever grows, so a token
-- handed out later always differs from every earlier one, and publish.lua
-- refuses a batch whose token is not the lease's current value.
-- Returns {1, token} when the caller holds the lease now, {0, holder's token or ""} otherwise.
local current = redis.call('GET', KEYS[1])
if ARGV[1] == 'release' then
  if current and current == ARGV[3] then
    redis.call('DEL', KEYS[1])
    return {1, ''}
  end
  return {0, current or ''}
end
if current then
  if ARGV[3] ~= '' and current == ARGV[3] then
    redis.call('PEXPIRE', KEYS[1], ARGV[4])
    return {1, current}
  end
  return {0, current}
end
local fence = redis.call('INCR', KEYS[2])
local token = fence .. ':' .. ARGV[2]
redis.call('SET', KEYS[1], token, 'PX', ARGV[4])
return {1, token}
