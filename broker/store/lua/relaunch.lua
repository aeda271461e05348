-- Launch a job's pod again: its pod failed before its main container started (watcher/relaunch.py).
-- KEYS[1] the in-flight zset; KEYS[2] the job's hash
-- ARGV[1] the failed pod's name; ARGV[2] the launch that pod was; ARGV[3] the next launch's pod name;
-- ARGV[4] the most launches the job may have; ARGV[5] now; ARGV[6] seconds after which the job counts
-- as orphaned if no delivery created its next pod (intake's orphan sweep pushes it again)
-- Only a `created` job whose current pod is the failed one moves, once per launch: back to
-- dispatched, with the next launch's number and pod name, its create claim and pod uid cleared.
-- Returns {"RELAUNCHED", next launch}; {"STALE"} when the pod is not the job's current launch (it was
-- relaunched already: nothing more is published about that pod); {"WAIT"} when the job is still
-- waiting for its create's answer to be recorded (the watch came first: ask again once it is);
-- {"NO", why} otherwise (the job ended, was revoked, or used its launches): the failure stands.
local f = redis.call('HMGET', KEYS[2], 'state', 'pod_name', 'launch', 'terminal_state', 'job_id')
if not f[1] then
  return {'NO', 'unknown job'}
end
if not f[5] then
  return {'NO', 'ended'}  -- a finished job's compacted hash (retained.py): it ended after the caller read it
end
local launch = tonumber(f[3] or '1')
if f[2] ~= ARGV[1] or launch ~= tonumber(ARGV[2]) then
  return {'STALE'}
end
if f[4] then
  return {'NO', 'ended'}
end
if f[1] == $(ledger.accepted) or f[1] == $(ledger.dispatched) then
  return {'WAIT'}
end
if f[1] ~= $(ledger.created) then
  return {'NO', f[1]}
end
if launch >= tonumber(ARGV[4]) then
  return {'NO', 'launches used'}
end
redis.call('HSET', KEYS[2], 'state', $(ledger.dispatched), 'pod_name', ARGV[3], 'launch', launch + 1,
           'updated_at', ARGV[5], 'relaunched_at', ARGV[5])
redis.call('HDEL', KEYS[2], 'uid', 'claim_token', 'claim_until', 'claim_worker')
redis.call('ZADD', KEYS[1], tonumber(ARGV[5]) + tonumber(ARGV[6]), f[5])
return {'RELAUNCHED', launch + 1}
