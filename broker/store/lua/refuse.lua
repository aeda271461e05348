-- Record a job intake refused, so the ledger knows it ended (its failed result follows).
-- KEYS[1] job hash
-- ARGV: job_id, scheduler_id, the refusal message, now
-- A job the ledger admitted before is left alone (a broken duplicate of a good submission
-- must not end it): returns 0. Otherwise the job is recorded as terminal with the first
-- refusal message, and 1 tells the caller to publish the failed result (again after a crash:
-- the publish script lets only the first terminal result through).
local state = redis.call('HGET', KEYS[1], 'state')
if state and redis.call('HEXISTS', KEYS[1], 'job_id') == 0 then
  -- A finished job's compacted hash (retained.py): a job refused before stays as it is, and its failed
  -- result is published again (the latch drops it); any other finished job is left alone.
  return redis.call('HEXISTS', KEYS[1], $(retained.refused))
end
if state and redis.call('HEXISTS', KEYS[1], 'refused') == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'state', $(ledger.terminal), 'job_id', ARGV[1], 'scheduler_id', ARGV[2],
  'updated_at', ARGV[4])
redis.call('HSETNX', KEYS[1], 'refused', ARGV[3])
redis.call('HSETNX', KEYS[1], 'accepted_at', ARGV[4])
return 1
