-- A worker's claim on a delivered create task: count the delivery, report the state.
-- KEYS[1] job hash; ARGV[1] now
-- Returns {state or "", deliveries, owning scheduler id or ""}.
-- Only "accepted" and "dispatched" may be created.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return {'', 0, ''}
end
local deliveries = 0
if state == 'accepted' or state == 'dispatched' then
  deliveries = redis.call('HINCRBY', KEYS[1], 'deliveries', 1)
  redis.call('HSET', KEYS[1], 'claimed_at', ARGV[1])
end
return {state, deliveries, redis.call('HGET', KEYS[1], 'scheduler_id') or ''}
