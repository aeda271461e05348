-- Jobs that should be on their way to a worker but have no live delivery.
-- KEYS[1] the in-flight zset (job id -> time after which the job counts as orphaned)
-- KEYS[2] the Celery queue list; KEYS[3..] the ledger hashes of the candidates
-- ARGV[1] seconds before the same job may count again; ARGV[2..] the candidates' job ids
-- (the members of KEYS[1] the caller found due; each is checked again here)
-- A message can vanish with a Redis crash (kombu pops it, then records it as unacked in a
-- second write). Such a job stays accepted/dispatched with nobody holding it. Nothing is
-- returned while the Celery queue still holds messages (the job may be among them). Jobs
-- no longer waiting for a pod leave the set. Returns the records of the orphaned jobs.
if redis.call('LLEN', KEYS[2]) > 0 then
  return {}
end
local creatable = $(creatable_states)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local again = tonumber(ARGV[1])
local records = {}
for i = 2, #ARGV do
  local job_id, job = ARGV[i], KEYS[i + 1]
  local due = tonumber(redis.call('ZSCORE', KEYS[1], job_id))
  if due and due <= now then
    local state = redis.call('HGET', job, 'state')
    local lease_end = tonumber(redis.call('HGET', job, 'claim_until') or '0')
    if creatable[state] then
      if lease_end > now then
        redis.call('ZADD', KEYS[1], lease_end + again, job_id)
      else
        redis.call('ZADD', KEYS[1], now + again, job_id)
        records[#records + 1] = redis.call('HGET', job, 'job')
      end
    else
      redis.call('ZREM', KEYS[1], job_id)
    end
  end
end
return records
