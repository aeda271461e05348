-- The one path every result takes to a scheduler's results stream.
--
-- KEYS[1] the in-flight zset; KEYS[2] the set of known schedulers; KEYS[3] the running totals hash;
-- then, in this order,
--   the lease key       when ARGV[2] (a lease token) is not "",
--   the position key    when ARGV[3] (a position value) is not "",
--   the pod-state hash  when ARGV[4] is "1";
-- then 2 keys per owner named in ARGV (its results stream, its job set), in that order;
-- then the ledger hash of each item that names a job, in item order.
-- ARGV[1] now; ARGV[2] lease token or ""; ARGV[3] position value or ""; ARGV[4] "1" or "";
-- ARGV[5] seconds a finished job's ledger entry is kept (0: forever); ARGV[6] the results group;
-- ARGV[7] number of owners; then the owners' scheduler ids (the schedulers the caller believes
-- own the items' jobs); then the number of items, and 9 arguments per item:
--   job_id, state, owner (its position among the owners, from 1), payload, pod_state_field,
--   pod_state_value, pod_uid, pending_reason, again
--   (job_id "" records only the pod state; pod_state_field "" records none;
--    an empty pod_state_value deletes the field; pod_uid "" when the result is about no pod;
--    pending_reason: the fingerprint of a pending result's reason, or ""; again "1" when the
--    pending result may follow an earlier one of the job: its event id tells them apart)
--
-- Rules, per job:
--   * the first terminal result wins and is latched in `terminal_state`; later terminal
--     results are dropped; a latching result about a pod records that pod's uid as the
--     job's `uid` when the ledger has none yet (its create's answer has not come back), so
--     the worker tells "ended by this very pod" from "ended before this pod existed";
--   * running is published at most once; pending first, then again each time its reason
--     differs from the last one published (an item with again "1": its event id tells it
--     apart; a plain one, event id <job_id>:pending, at most once), up to $(max_pending_results)
--     pending results per job; never after running (for pending) nor after the terminal result;
--   * adopted is published once per old scheduler (the item's owner) and sets no latch.
-- Counting, in this step that records the facts: each latched terminal result in the
-- `ended:<state>` total, and a pod whose uid a latching result records first (its create's answer
-- never reached the ledger: the worker may have died) in the `created` total, as created.lua does.
-- A job's terminal result also ends its bookkeeping: it leaves the in-flight set and its
-- scheduler's job set, and, once the call's items are written, its ledger entry is compacted to
-- the fields a finished job keeps (lib/compact.lua) and expires after the retention.
-- A result goes to its job's current owner (adoption moves it); when the ledger names an
-- owner other than the item's, nothing is written and the reply is
-- {"MOVED", job_id, owner, ...}: the caller asks again with the owners' keys.
-- Otherwise returns {"OK", one entry id per item, or "" where the item published nothing, then
-- per item the job's submitted_at from its ledger where the item published a result, else ""}
-- (the submit → running/terminal latencies, without another read).
-- A lease token that is not the current one fails the whole call with FENCED.
$(include:results_group)
$(include:compact)
local terminal = $(terminal_states)
local now, token, position = ARGV[1], ARGV[2], ARGV[3]
local retention, group = tonumber(ARGV[5]), ARGV[6]
local totals_key = KEYS[3]
local next_key = 4
local counts = {}                              -- running total field -> amount, written once at the end
local lease_key, position_key, states_key
if token ~= '' then lease_key = KEYS[next_key]; next_key = next_key + 1 end
if position ~= '' then position_key = KEYS[next_key]; next_key = next_key + 1 end
if ARGV[4] == '1' then states_key = KEYS[next_key]; next_key = next_key + 1 end
local owners = tonumber(ARGV[7])
local owner_keys = next_key                    -- KEYS[owner_keys + 2 * (o - 1)]: owner o's stream, then its job set
next_key = next_key + 2 * owners
local count = tonumber(ARGV[8 + owners])
local first = 9 + owners                       -- ARGV index of the first item

if lease_key then
  local holder = redis.call('GET', lease_key)
  if holder ~= token then
    return redis.error_reply('FENCED lease ' .. lease_key .. ' is not held by token ' .. token)
  end
end

-- Every owner is checked before anything is written. job_of[i]: item i's ledger hash (or false);
-- latches: ledger hash -> its terminal state or false, read once and kept current as the batch latches.
local job_of, latches, moved, submitted = {}, {}, {}, {}
for i = 0, count - 1 do
  local base = first + i * 9
  if ARGV[base] ~= '' then
    local job = KEYS[next_key]
    next_key = next_key + 1
    job_of[i] = job
    local ledger = redis.call('HMGET', job, 'scheduler_id', 'terminal_state', 'submitted_at',
                              $(retained.scheduler_id), $(retained.terminal_state))
    ledger[1], ledger[2] = ledger[1] or ledger[4], ledger[2] or ledger[5]  -- a compacted hash's short names
    if latches[job] == nil then latches[job] = ledger[2] end
    submitted[i] = ledger[3] or ''
    if ARGV[base + 1] ~= $(state.adopted) and ledger[1] and ledger[1] ~= ARGV[7 + tonumber(ARGV[base + 2])] then
      moved[#moved + 1] = ARGV[base]
      moved[#moved + 1] = ledger[1]
    end
  else
    job_of[i] = false
  end
end
if #moved > 0 then
  table.insert(moved, 1, 'MOVED')
  return moved
end

local published, times = {'OK'}, {}
local ended = {}                              -- ledger hashes latched in this call, compacted at the end
local ensured = {}                             -- results streams known to exist during this call
for i = 0, count - 1 do
  local base = first + i * 9
  local job_id, state, job = ARGV[base], ARGV[base + 1], job_of[i]
  local entry = ''
  if job then
    local o = tonumber(ARGV[base + 2])
    local owner, stream, jobs = ARGV[7 + o], KEYS[owner_keys + 2 * (o - 1)], KEYS[owner_keys + 2 * (o - 1) + 1]
    local latched = latches[job]
    local publish = false
    if terminal[state] then
      if not latched then
        latches[job] = state
        publish = true
        redis.call('HSET', job, 'terminal_state', state, 'terminal_at', now, 'updated_at', now)
        counts[$(total.ended_prefix) .. state] = (counts[$(total.ended_prefix) .. state] or 0) + 1
        if ARGV[base + 6] ~= '' and redis.call('HSETNX', job, 'uid', ARGV[base + 6]) == 1 then
          counts[$(total.created)] = (counts[$(total.created)] or 0) + 1
        end
        redis.call('ZREM', KEYS[1], job_id)
        redis.call('SREM', jobs, job_id)
        ended[#ended + 1] = job
        local ledger = redis.call('HGET', job, 'state')
        if ledger and ledger ~= $(ledger.revoked) then
          redis.call('HSET', job, 'state', $(ledger.terminal))
        end
      end
    elseif state == $(state.pending) then
      -- The first pending of the job, then one per new reason. A plain one (event id
      -- <job_id>:pending, again "") goes out at most once; a later one needs a reason that
      -- differs from the last one published.
      local reason, plain = ARGV[base + 7], ARGV[base + 8] ~= '1'
      if not latched and redis.call('HEXISTS', job, 'published_running') == 0 then
        local last = redis.call('HMGET', job, 'published_pending', 'pending_reason', 'pending_count', 'pending_plain')
        if not last[1] then
          publish = true
        elseif (plain and not last[4]) or (not plain and reason ~= '' and reason ~= last[2]) then
          publish = tonumber(last[3] or '1') < $(max_pending_results)
        end
        if publish then
          redis.call('HSETNX', job, 'published_pending', now)
          redis.call('HSET', job, 'pending_reason', reason)
          redis.call('HINCRBY', job, 'pending_count', 1)
          if plain then
            redis.call('HSET', job, 'pending_plain', 1)
          end
        end
      end
    elseif state == $(state.running) then
      publish = not latched and redis.call('HSETNX', job, 'published_running', now) == 1
    elseif state == $(state.adopted) then
      publish = redis.call('HSETNX', job, 'published_adopted:' .. owner, now) == 1
    end
    if publish then
      if not ensured[stream] then
        ensure_results_group(stream, KEYS[2], group, owner)
        ensured[stream] = true
      end
      entry = redis.call('XADD', stream, '*', $(record_field), ARGV[base + 3])
      redis.call('HSET', job, 'last_state', state, 'last_entry', entry)
    end
  end
  times[#times + 1] = (entry ~= '' and submitted[i]) or ''
  local field = ARGV[base + 4]
  if states_key and field ~= '' then
    if ARGV[base + 5] == '' then
      redis.call('HDEL', states_key, field)  -- an empty state forgets the pod
    else
      redis.call('HSET', states_key, field, ARGV[base + 5])
    end
  end
  published[#published + 1] = entry
end

for _, job in ipairs(ended) do
  compact_ledger(job, retention)
end
if position_key then
  redis.call('SET', position_key, position)
end
for name, amount in pairs(counts) do
  redis.call('HINCRBY', totals_key, name, amount)
end
for _, value in ipairs(times) do
  published[#published + 1] = value
end
return published
