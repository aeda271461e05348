-- Compare-and-set a job's ledger state.
-- KEYS[1] job hash; KEYS[2] the in-flight zset
-- ARGV[1] allowed current states, comma separated; ARGV[2] new state; ARGV[3] now;
-- ARGV[4..] extra field/value pairs written with the change.
-- A job that leaves the creatable states leaves the in-flight set.
-- Returns {1, new_state} when it moved, {0, current_state or ""} when it did not.
local creatable = $(creatable_states)
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return {0, ''}
end
for allowed in string.gmatch(ARGV[1], '[^,]+') do
  if allowed == state then
    redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updated_at', ARGV[3], ARGV[2] .. '_at', ARGV[3])
    if not creatable[ARGV[2]] then
      redis.call('ZREM', KEYS[2], redis.call('HGET', KEYS[1], 'job_id') or '')
    end
    for i = 4, #ARGV, 2 do
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    end
    return {1, ARGV[2]}
  end
end
return {0, state}
