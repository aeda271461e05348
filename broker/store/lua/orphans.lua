-- Jobs that should be on their way to a worker but have no live delivery.
-- KEYS[1] the in-flight zset (job id -> time after which the job counts as orphaned)
-- KEYS[2 .. 1+q] the Celery queue list of each cluster; KEYS[2+q ..] the ledger hashes of the candidates
-- ARGV[1] seconds before the same job may count again; ARGV[2] q, the number of clusters;
-- ARGV[3 .. 2+q] the clusters of those queues ("" for the default cluster); ARGV[3+q ..] the candidates'
-- job ids (the members of KEYS[1] the caller found due; each is checked again here)
-- A message can vanish with a Redis crash (kombu pops it, then records it as unacked in a
-- second write). Such a job stays accepted/dispatched with nobody holding it. A job is left alone
-- while its cluster's Celery queue still holds messages (the job may be among them), or when its
-- cluster is not among the given ones. Jobs no longer waiting for a pod leave the set. Returns the
-- records of the orphaned jobs.
local q = tonumber(ARGV[2])
local idle = {}
for c = 1, q do
  idle[ARGV[2 + c]] = redis.call('LLEN', KEYS[1 + c]) == 0
end
local creatable = $(creatable_states)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local again = tonumber(ARGV[1])
local records = {}
for i = 3 + q, #ARGV do
  local job_id, job = ARGV[i], KEYS[i - 1]
  local due = tonumber(redis.call('ZSCORE', KEYS[1], job_id))
  if due and due <= now then
    local state = redis.call('HGET', job, 'state')
    local lease_end = tonumber(redis.call('HGET', job, 'claim_until') or '0')
    if not creatable[state] then
      redis.call('ZREM', KEYS[1], job_id)
    elseif idle[redis.call('HGET', job, 'cluster') or ''] then
      if lease_end > now then
        redis.call('ZADD', KEYS[1], lease_end + again, job_id)
      else
        redis.call('ZADD', KEYS[1], now + again, job_id)
        records[#records + 1] = redis.call('HGET', job, 'job')
      end
    end
  end
end
return records
