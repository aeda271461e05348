-- Compare-and-set the ledger state of one or more jobs, in one call.
-- KEYS[1] the in-flight zset; KEYS[2] the running totals hash; KEYS[3..] each job's hash
-- ARGV[1] allowed current states, comma separated; ARGV[2] new state; ARGV[3] now;
-- ARGV[4] the running total that counts the jobs moved ("" for none: intake's dispatch counts
-- `dispatched` here, in the step that records it, so no crash loses or repeats a count);
-- ARGV[5..] extra field/value pairs written with the change.
-- A job that leaves the creatable states leaves the in-flight set.
-- Returns per job, in the order of KEYS[3..]: {1, new_state} when it moved, {0, current_state or ""} when
-- it did not.
local creatable = $(creatable_states)
local allowed = {}
for state in string.gmatch(ARGV[1], '[^,]+') do
  allowed[state] = true
end

local function transition(job)
  local state = redis.call('HGET', job, 'state')
  if not state then
    return {0, ''}
  end
  if not allowed[state] then
    return {0, state}
  end
  redis.call('HSET', job, 'state', ARGV[2], 'updated_at', ARGV[3], ARGV[2] .. '_at', ARGV[3])
  if not creatable[ARGV[2]] then
    redis.call('ZREM', KEYS[1], redis.call('HGET', job, 'job_id') or '')
  end
  for i = 5, #ARGV, 2 do
    redis.call('HSET', job, ARGV[i], ARGV[i + 1])
  end
  return {1, ARGV[2]}
end

local replies, moved = {}, 0
for i = 3, #KEYS do
  replies[i - 2] = transition(KEYS[i])
  moved = moved + replies[i - 2][1]
end
if ARGV[4] ~= '' and moved > 0 then
  redis.call('HINCRBY', KEYS[2], ARGV[4], moved)
end
return replies
