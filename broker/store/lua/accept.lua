-- Record jobs in the ledger unless they are already there, in one call (a batch intake read).
-- KEYS[1] the set of known schedulers (which the reconciler walks); KEYS[2] the running totals hash
--         (the `accepted` total counts each job recorded now); then per job two keys:
--         its hash, and its owning scheduler's job set (of jobs without a terminal result)
-- ARGV[1] now; then per job seven values: job_id, scheduler_id, job record (msgpack), pod_name, namespace,
--         submitted_at (the record's, kept beside it so the watcher's latency metrics need not decode it),
--         cluster (the record's, "" for the default cluster: recorded before any create, never changed)
-- Returns per job "new" for a job recorded now, else the state it already has.
local now = ARGV[1]
local replies, new = {}, 0
for i = 0, (#KEYS - 2) / 2 - 1 do
  local job, jobs = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local a = 2 + 7 * i
  local state = redis.call('HGET', job, 'state')
  if state then
    replies[i + 1] = state
  elseif redis.call('HEXISTS', job, 'terminal_state') == 1 then
    replies[i + 1] = $(ledger.terminal)
  else
    redis.call('HSET', job, 'state', $(ledger.accepted), 'job_id', ARGV[a], 'scheduler_id', ARGV[a + 1],
      'job', ARGV[a + 2], 'pod_name', ARGV[a + 3], 'namespace', ARGV[a + 4], 'accepted_at', now,
      'updated_at', now, 'deliveries', 0, 'submitted_at', ARGV[a + 5])
    if ARGV[a + 6] ~= '' then
      redis.call('HSET', job, 'cluster', ARGV[a + 6])
    end
    redis.call('SADD', jobs, ARGV[a])
    redis.call('SADD', KEYS[1], ARGV[a + 1])
    replies[i + 1] = 'new'
    new = new + 1
  end
end
if new > 0 then
  redis.call('HINCRBY', KEYS[2], $(total.accepted), new)
end
return replies
