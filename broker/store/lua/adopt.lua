-- Adoption's broker step, atomic: a dead scheduler's jobs and unread results move to a new one.
-- KEYS[1] old scheduler's job set   KEYS[2] new scheduler's job set
-- KEYS[3] old results stream        KEYS[4] new results stream
-- KEYS[5] the adoption's pending-patch set   KEYS[6] the set of known schedulers
-- KEYS[7..] the ledger hashes of the jobs in KEYS[1], in the order of ARGV[5..]
-- ARGV[1] old scheduler id; ARGV[2] new scheduler id; ARGV[3] now; ARGV[4] results group;
-- ARGV[5..] the job ids the caller read from KEYS[1]
-- When KEYS[1] holds a job the caller did not name (one was accepted meanwhile), nothing is
-- written and the reply is {"RETRY"}: the caller reads the set again.
-- Jobs whose ledger owner is the old scheduler get the new owner; live ones (accepted,
-- dispatched, created) also go into the pending-patch set. Results the old scheduler's
-- group has not acknowledged (pending or never delivered) are appended to the new stream
-- and removed from the old one, their `scheduler_id` now the new scheduler's (lib/with_owner),
-- except `adopted` results: those are the old scheduler's own notices (a repeated adoption
-- must not carry them off). Returns {live job ids..., "", moved results count}.
$(include:results_group)
$(include:with_owner)
local old_id, new_id, now, group = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local live_states = $(live_ledger_states)
local job_keys = {}
for i = 5, #ARGV do
  job_keys[ARGV[i]] = KEYS[i + 2]
end
local members = redis.call('SMEMBERS', KEYS[1])
for _, job_id in ipairs(members) do
  if not job_keys[job_id] then
    return {'RETRY'}
  end
end
local live = {}
for _, job_id in ipairs(members) do
  local job = job_keys[job_id]
  if redis.call('HGET', job, 'scheduler_id') == old_id then
    redis.call('HSET', job, 'scheduler_id', new_id, 'adopted_from', old_id, 'adopted_at', now)
    if live_states[redis.call('HGET', job, 'state')] then
      live[#live + 1] = job_id
      redis.call('SADD', KEYS[5], job_id)
    end
  end
  redis.call('SADD', KEYS[2], job_id)
end
redis.call('DEL', KEYS[1])

ensure_results_group(KEYS[4], KEYS[6], group, new_id)

local function is_adopted_notice(fields)
  for i = 1, #fields, 2 do
    if fields[i] == $(record_field) then
      local ok, record = pcall(cmsgpack.unpack, fields[i + 1])
      return ok and type(record) == 'table' and record['state'] == $(state.adopted)
    end
  end
  return false
end

local moved = 0
local function move(id, acked)
  local entries = redis.call('XRANGE', KEYS[3], id, id)
  if #entries == 1 and is_adopted_notice(entries[1][2]) then
    return
  end
  if #entries == 1 then
    local fields = entries[1][2]
    for i = 1, #fields, 2 do
      if fields[i] == $(record_field) then fields[i + 1] = with_owner(fields[i + 1], new_id) end
    end
    redis.call('XADD', KEYS[4], '*', unpack(fields))
    moved = moved + 1
  end
  if acked then redis.call('XACK', KEYS[3], group, id) end
  redis.call('XDEL', KEYS[3], id)
end

if redis.call('EXISTS', KEYS[3]) == 1 then
  local last = nil
  for _, info in ipairs(redis.call('XINFO', 'GROUPS', KEYS[3])) do
    local fields = {}
    for i = 1, #info, 2 do fields[info[i]] = info[i + 1] end
    if fields['name'] == group then last = fields['last-delivered-id'] end
  end
  if last then
    for _, pending in ipairs(redis.call('XPENDING', KEYS[3], group, '-', '+', 1000000)) do
      move(pending[1], true)
    end
    for _, entry in ipairs(redis.call('XRANGE', KEYS[3], '(' .. last, '+')) do
      move(entry[1], false)
    end
  else
    for _, entry in ipairs(redis.call('XRANGE', KEYS[3], '-', '+')) do
      move(entry[1], false)
    end
  end
end
live[#live + 1] = ''
live[#live + 1] = moved
return live
