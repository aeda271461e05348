-- The one path every result takes to a scheduler's results stream.
--
-- KEYS[1] the in-flight zset; KEYS[2] the set of known schedulers; then, in this order,
--   the lease key       when ARGV[2] (a lease token) is not "",
--   the position key    when ARGV[3] (a position value) is not "",
--   the pod-state hash  when ARGV[4] is "1";
-- then 3 keys per item that names a job: its ledger hash, the results stream of its owner
-- (the scheduler the caller believes owns it) and that owner's job set.
-- ARGV[1] now; ARGV[2] lease token or ""; ARGV[3] position value or ""; ARGV[4] "1" or "";
-- ARGV[5] seconds a finished job's ledger entry is kept (0: forever); ARGV[6] the results group;
-- ARGV[7] number of items; then 7 arguments per item:
--   job_id, state, owner, payload, pod_state_field, pod_state_value, pod_uid
--   (job_id "" records only the pod state; pod_state_field "" records none;
--    an empty pod_state_value deletes the field; pod_uid "" when the result is about no pod)
--
-- Rules, per job:
--   * the first terminal result wins and is latched in `terminal_state`; later terminal
--     results are dropped; a latching result about a pod records that pod's uid as the
--     job's `uid` when the ledger has none yet (its create's answer has not come back), so
--     the worker tells "ended by this very pod" from "ended before this pod existed";
--   * pending and running are published at most once each, never after running
--     (for pending) and never after the terminal result;
--   * adopted is published once per old scheduler (the item's owner) and sets no latch.
-- A job's terminal result also ends its bookkeeping: it leaves the in-flight set and its
-- scheduler's job set, and its ledger entry expires after the retention.
-- A result goes to its job's current owner (adoption moves it); when the ledger names an
-- owner other than the item's, nothing is written and the reply is
-- {"MOVED", job_id, owner, ...}: the caller asks again with the owners' keys.
-- Otherwise returns {"OK", one entry id per item, or "" where the item published nothing}.
-- A lease token that is not the current one fails the whole call with FENCED.
$(include:results_group)
local terminal = $(terminal_states)
local now, token, position = ARGV[1], ARGV[2], ARGV[3]
local retention, group, count = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local next_key = 3
local lease_key, position_key, states_key
if token ~= '' then lease_key = KEYS[next_key]; next_key = next_key + 1 end
if position ~= '' then position_key = KEYS[next_key]; next_key = next_key + 1 end
if ARGV[4] == '1' then states_key = KEYS[next_key]; next_key = next_key + 1 end

if lease_key then
  local holder = redis.call('GET', lease_key)
  if holder ~= token then
    return redis.error_reply('FENCED lease ' .. lease_key .. ' is not held by token ' .. token)
  end
end

-- Where each item's keys are, and a check of every owner before anything is written.
local items, moved = {}, {}
for i = 0, count - 1 do
  local base = 8 + i * 7
  local item = {job_id = ARGV[base], state = ARGV[base + 1], owner = ARGV[base + 2],
                payload = ARGV[base + 3], field = ARGV[base + 4], value = ARGV[base + 5], uid = ARGV[base + 6]}
  if item.job_id ~= '' then
    item.job, item.stream, item.jobs = KEYS[next_key], KEYS[next_key + 1], KEYS[next_key + 2]
    next_key = next_key + 3
    if item.state ~= $(state.adopted) then
      local owner = redis.call('HGET', item.job, 'scheduler_id')
      if owner and owner ~= item.owner then
        moved[#moved + 1] = item.job_id
        moved[#moved + 1] = owner
      end
    end
  end
  items[i + 1] = item
end
if #moved > 0 then
  table.insert(moved, 1, 'MOVED')
  return moved
end

local published = {'OK'}
for _, item in ipairs(items) do
  local entry = ''
  local state, job = item.state, item.job
  if item.job_id ~= '' then
    local latched = redis.call('HGET', job, 'terminal_state')
    local publish = false
    if terminal[state] then
      if not latched then
        publish = true
        redis.call('HSET', job, 'terminal_state', state, 'terminal_at', now, 'updated_at', now)
        if item.uid ~= '' then
          redis.call('HSETNX', job, 'uid', item.uid)
        end
        redis.call('ZREM', KEYS[1], item.job_id)
        redis.call('SREM', item.jobs, item.job_id)
        if retention > 0 then
          redis.call('EXPIRE', job, retention)
        end
        local ledger = redis.call('HGET', job, 'state')
        if ledger and ledger ~= $(ledger.revoked) then
          redis.call('HSET', job, 'state', $(ledger.terminal))
        end
      end
    elseif state == $(state.pending) then
      if not latched and redis.call('HSETNX', job, 'published_pending', now) == 1 then
        publish = redis.call('HEXISTS', job, 'published_running') == 0
      end
    elseif state == $(state.running) then
      publish = not latched and redis.call('HSETNX', job, 'published_running', now) == 1
    elseif state == $(state.adopted) then
      publish = redis.call('HSETNX', job, 'published_adopted:' .. item.owner, now) == 1
    end
    if publish then
      ensure_results_group(item.stream, KEYS[2], group, item.owner)
      entry = redis.call('XADD', item.stream, '*', $(record_field), item.payload)
      redis.call('HSET', job, 'last_state', state, 'last_entry', entry)
    end
  end
  if states_key and item.field ~= '' then
    if item.value == '' then
      redis.call('HDEL', states_key, item.field)  -- an empty state forgets the pod
    else
      redis.call('HSET', states_key, item.field, item.value)
    end
  end
  published[#published + 1] = entry
end

if position_key then
  redis.call('SET', position_key, position)
end
return published
