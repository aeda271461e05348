-- A worker process's liveness record, renewed.
-- KEYS[1] the workers zset (worker id -> server time its record lapses)
-- KEYS[2] the worker deliveries hash (worker id -> the delivery tags it holds, space-separated)
-- ARGV[1] worker id; ARGV[2] seconds the record lives; ARGV[3] held delivery tags; ARGV[4] "leave" to remove it
-- Returns 1 when the record had lapsed (or never existed) before this beat: claims this worker
-- took before may have been voided and taken over, so its deliveries must check theirs.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
if ARGV[4] == 'leave' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 0
end
local lapses = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if lapses > now then
  return 0
end
return 1
