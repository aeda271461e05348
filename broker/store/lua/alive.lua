-- A process's liveness record (intake, watcher), renewed; workers keep theirs with beat.lua.
-- KEYS[1] the role's liveness zset (instance -> server time its record lapses)
-- ARGV[1] instance; ARGV[2] seconds the record lives; ARGV[3] seconds after which a lapsed record is
-- forgotten; ARGV[4] "leave" to remove the record (a clean shutdown)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
if ARGV[4] == 'leave' then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
return 1
