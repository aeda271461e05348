-- A worker's claim on a delivered create task.
-- KEYS[1] job hash; KEYS[2] the in-flight zset; KEYS[3] the workers zset (worker id -> time
--         its liveness record lapses)
-- ARGV[1] this delivery's token; ARGV[2] lease seconds; ARGV[3] seconds after the lease
--         before an unfinished job counts as orphaned (the Celery visibility timeout);
--         ARGV[4] the claiming worker's id ("" when it keeps no liveness record)
-- Only creatable jobs (accepted, dispatched) may be created, and only by one delivery at a
-- time: a delivery takes a lease on the job; another delivery that arrives while the
-- lease runs (a duplicate message) is told the job is busy and counts no delivery.
-- A lease whose worker's liveness record lapsed is void: that worker is dead (or paused,
-- and then its delivery finds its claim gone before it creates: lua/hold.lua).
-- Returns {state or "", deliveries, owning scheduler id or "", busy (0/1)}.
local creatable = $(creatable_states)
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return {'', 0, '', 0}
end
local owner = redis.call('HGET', KEYS[1], 'scheduler_id') or ''
local deliveries = tonumber(redis.call('HGET', KEYS[1], 'deliveries') or '0')
if not creatable[state] then
  return {state, deliveries, owner, 0}
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local holder = redis.call('HGET', KEYS[1], 'claim_token')
local lease_end = tonumber(redis.call('HGET', KEYS[1], 'claim_until') or '0')
if holder and holder ~= ARGV[1] and lease_end > now then
  local worker = redis.call('HGET', KEYS[1], 'claim_worker') or ''
  if worker == '' or tonumber(redis.call('ZSCORE', KEYS[3], worker) or '0') > now then
    return {state, deliveries, owner, 1}
  end
end
deliveries = redis.call('HINCRBY', KEYS[1], 'deliveries', 1)
local until_ = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'claimed_at', tostring(now), 'claim_token', ARGV[1], 'claim_until', tostring(until_),
           'claim_worker', ARGV[4])
redis.call('ZADD', KEYS[2], until_ + tonumber(ARGV[3]), redis.call('HGET', KEYS[1], 'job_id'))
return {state, deliveries, owner, 0}
