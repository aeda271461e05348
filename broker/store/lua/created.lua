-- Record the pods of several jobs as created, in one call (a worker's batch of one message).
-- KEYS[1] the in-flight zset; KEYS[2..] each job's hash
-- ARGV[1] now; ARGV[2..] each job's pod uid, in the order of KEYS[2..]
-- Per job, the compare-and-set of transition.lua from the creatable states to created: the
-- state, updated_at, created_at and uid are written and the job leaves the in-flight set.
-- Returns per job {1, created} when it moved, {0, current state or ""} when it did not.
local creatable = $(creatable_states)
local now = ARGV[1]
local replies = {}
for i = 2, #KEYS do
  local f = redis.call('HMGET', KEYS[i], 'state', 'job_id')
  local state = f[1]
  if not state then
    replies[i - 1] = {0, ''}
  elseif creatable[state] then
    redis.call('HSET', KEYS[i], 'state', $(ledger.created), 'updated_at', now, 'created_at', now, 'uid', ARGV[i])
    redis.call('ZREM', KEYS[1], f[2] or '')
    replies[i - 1] = {1, $(ledger.created)}
  else
    replies[i - 1] = {0, state}
  end
end
return replies
