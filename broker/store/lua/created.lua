-- Record the pods of several jobs as created, in one call (a worker's batch of one message).
-- KEYS[1] the in-flight zset; KEYS[2] the running totals hash; KEYS[3..] each job's hash
-- ARGV[1] now; ARGV[2..] each job's pod uid, in the order of KEYS[3..]
-- Per job, the compare-and-set of transition.lua from the creatable states to created: the
-- state, updated_at, created_at and uid are written and the job leaves the in-flight set.
-- Counting: this is where a pod becomes a fact, so the `created` total counts here, once per pod
-- uid the ledger had not recorded (a redelivery that finds its own pod counts nothing). A pod
-- created after its job ended (it is removed again) counts once too, remembered in `undone_uid`;
-- a pod whose terminal result came first was counted by publish.lua, which recorded its uid.
-- Returns per job {1, created} when it moved, {0, current state or ""} when it did not.
local creatable = $(creatable_states)
local now = ARGV[1]
local replies = {}
local counted = 0
for i = 3, #KEYS do
  local uid = ARGV[i - 1]
  -- A finished job's compacted hash has its fields under short names, and no job_id (retained.py).
  local f = redis.call('HMGET', KEYS[i], 'state', 'job_id', 'uid', 'undone_uid', $(retained.uid),
                       $(retained.undone_uid))
  local state = f[1]
  if not state then
    replies[i - 2] = {0, ''}
  elseif creatable[state] then
    redis.call('HSET', KEYS[i], 'state', $(ledger.created), 'updated_at', now, 'created_at', now, 'uid', uid)
    redis.call('ZREM', KEYS[1], f[2] or '')
    if f[3] ~= uid then counted = counted + 1 end
    replies[i - 2] = {1, $(ledger.created)}
  else
    if (f[3] or f[5]) ~= uid and (f[4] or f[6]) ~= uid then
      redis.call('HSET', KEYS[i], f[2] and 'undone_uid' or $(retained.undone_uid), uid)
      counted = counted + 1
    end
    replies[i - 2] = {0, state}
  end
end
if counted > 0 then
  redis.call('HINCRBY', KEYS[2], $(total.created), counted)
end
return replies
