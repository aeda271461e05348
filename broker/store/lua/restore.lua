-- Return to the Celery queue the messages held by workers whose liveness record lapsed.
-- KEYS[1] the workers zset (worker id -> server time its record lapses)
-- KEYS[2] the worker deliveries hash (worker id -> the delivery tags it holds, space-separated)
-- KEYS[3] kombu's unacked hash (delivery tag -> JSON [message, exchange, routing key])
-- KEYS[4] kombu's unacked index (delivery tag -> time delivered)
-- KEYS[5] the Celery queue list
-- ARGV[1] grace: seconds a delivery may go unreported by its worker (longer than a beat)
-- ARGV[2] how many messages at most; ARGV[3] the queue's routing key; ARGV[4] seconds after
--         which a lapsed worker's record is forgotten
-- A message delivered longer than the grace ago that no live worker reports holding belongs to a
-- dead (or paused) worker: it is moved back to the queue exactly as kombu's own restore does
-- (removed from both indices and pushed where BRPOP takes next), in one atomic step, so kombu's
-- visibility-timeout sweep and this one never both restore it. Returns the number restored.
$(include:requeue)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local held = {}
for _, worker in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  local tags = redis.call('HGET', KEYS[2], worker)
  if tags then
    for tag in string.gmatch(tags, '%S+') do
      held[tag] = true
    end
  end
end
for _, worker in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[4]))) do
  redis.call('ZREM', KEYS[1], worker)
  redis.call('HDEL', KEYS[2], worker)
end
local restored = 0
local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[1]), 'LIMIT', 0, 1000)
for _, tag in ipairs(old) do
  if restored >= tonumber(ARGV[2]) then
    break
  end
  if not held[tag] then
    restored = restored + requeue(KEYS[3], KEYS[4], KEYS[5], ARGV[3], tag)
  end
end
return restored
