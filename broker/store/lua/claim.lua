-- A worker's claim on the jobs of a delivered create task (one message), in one call.
-- KEYS[1] the in-flight zset; KEYS[2] the workers zset (worker id -> time its liveness record
--         lapses); KEYS[3..] each job's hash
-- ARGV[1] this delivery's token; ARGV[2] lease seconds; ARGV[3] seconds after the lease
--         before an unfinished job counts as orphaned (the Celery visibility timeout);
--         ARGV[4] the claiming worker's id ("" when it keeps no liveness record)
-- Only creatable jobs (accepted, dispatched) may be created, and only by one delivery at a
-- time: a delivery takes a lease on the job; another delivery that arrives while the
-- lease runs (a duplicate message) is told the job is busy and counts no delivery.
-- A lease whose worker's liveness record lapsed is void: that worker is dead (or paused,
-- and then its delivery finds its claim gone before it creates: lua/hold.lua).
-- Returns per job, in the order of KEYS[3..]: {state or "", deliveries, owning scheduler id or "", busy (0/1),
-- launch (1 for the first pod; the relaunch script counts it up)}.
local creatable = $(creatable_states)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local until_ = now + tonumber(ARGV[2])
local orphaned_at = until_ + tonumber(ARGV[3])

local function claim(job)
  local f = redis.call('HMGET', job, 'state', 'scheduler_id', 'deliveries', 'claim_token', 'claim_until',
                       'claim_worker', 'job_id', 'launch')
  local state = f[1]
  if not state then
    return {'', 0, '', 0, 1}
  end
  if not f[7] then
    -- A finished job's compacted hash: its fields under short names (retained.py).
    local short = redis.call('HMGET', job, $(retained.scheduler_id), $(retained.deliveries), $(retained.launch))
    f[2], f[3], f[8] = short[1], short[2], short[3]
  end
  local owner = f[2] or ''
  local deliveries = tonumber(f[3] or '0')
  local launch = tonumber(f[8] or '1')
  if not creatable[state] then
    return {state, deliveries, owner, 0, launch}
  end
  local holder = f[4]
  local lease_end = tonumber(f[5] or '0')
  if holder and holder ~= ARGV[1] and lease_end > now then
    local worker = f[6] or ''
    if worker == '' or tonumber(redis.call('ZSCORE', KEYS[2], worker) or '0') > now then
      return {state, deliveries, owner, 1, launch}
    end
  end
  deliveries = redis.call('HINCRBY', job, 'deliveries', 1)
  redis.call('HSET', job, 'claimed_at', tostring(now), 'claim_token', ARGV[1], 'claim_until', tostring(until_),
             'claim_worker', ARGV[4])
  redis.call('ZADD', KEYS[1], orphaned_at, f[7])
  return {state, deliveries, owner, 0, launch}
end

local replies = {}
for i = 3, #KEYS do
  replies[i - 2] = claim(KEYS[i])
end
return replies
