-- Jobs that should be on their way to a worker but have no live delivery.
-- KEYS[1] the in-flight zset (job id -> time after which the job counts as orphaned)
-- KEYS[2] the Celery queue list
-- ARGV[1] how many at most; ARGV[2] seconds before the same job may count again
-- A message can vanish with a Redis crash (kombu pops it, then records it as unacked in a
-- second write). Such a job stays accepted/dispatched with nobody holding it. Nothing is
-- returned while the Celery queue still holds messages (the job may be among them). Jobs
-- no longer waiting for a pod leave the set. Returns the records of the orphaned jobs.
if redis.call('LLEN', KEYS[2]) > 0 then
  return {}
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local records = {}
for _, job_id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))) do
  local job = 'podq:job:' .. job_id
  local state = redis.call('HGET', job, 'state')
  local lease_end = tonumber(redis.call('HGET', job, 'claim_until') or '0')
  if state == 'accepted' or state == 'dispatched' then
    if lease_end > now then
      redis.call('ZADD', KEYS[1], lease_end + tonumber(ARGV[2]), job_id)
    else
      redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), job_id)
      records[#records + 1] = redis.call('HGET', job, 'job')
    end
  else
    redis.call('ZREM', KEYS[1], job_id)
  end
end
return records
