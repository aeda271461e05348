-- Record a job in the ledger unless it is already there.
-- KEYS[1] job hash, KEYS[2] the owning scheduler's job set (of jobs without a terminal
-- result), KEYS[3] the set of known schedulers (which the reconciler walks)
-- ARGV: job_id, scheduler_id, job record (msgpack), pod_name, namespace, now
-- Returns "new" for a job recorded now, else the state it already has.
local state = redis.call('HGET', KEYS[1], 'state')
if state then
  return state
end
if redis.call('HEXISTS', KEYS[1], 'terminal_state') == 1 then
  return $(ledger.terminal)
end
redis.call('HSET', KEYS[1], 'state', $(ledger.accepted), 'job_id', ARGV[1], 'scheduler_id', ARGV[2],
  'job', ARGV[3], 'pod_name', ARGV[4], 'namespace', ARGV[5], 'accepted_at', ARGV[6],
  'updated_at', ARGV[6], 'deliveries', 0)
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
return 'new'
