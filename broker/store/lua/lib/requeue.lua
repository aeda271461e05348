-- Move kombu's unacknowledged delivery `tag` back to the Celery queue, exactly as kombu's own
-- restore does: removed from the unacked hash and its index, pushed where BRPOP takes next.
-- kombu stores json.dumps([message, exchange, routing_key]); the message text is kept as it is
-- (no re-encoding), only the two trailing strings are checked: a delivery for another routing
-- key than `routing_key` is left alone. Returns 1 when the message was moved, else 0 (a tag no
-- longer in the hash leaves the index).
local function requeue(unacked, index, queue, routing_key, tag)
  local raw = redis.call('HGET', unacked, tag)
  if not raw then
    redis.call('ZREM', index, tag)
    return 0
  end
  local message, key = string.match(raw, '^%[(.*), "[^"]*", "([^"]*)"%]$')
  if not message or key ~= routing_key then
    return 0
  end
  redis.call('ZREM', index, tag)
  redis.call('HDEL', unacked, tag)
  redis.call('RPUSH', queue, message)
  return 1
end
