-- The one path every result takes to a scheduler's results stream.
--
-- ARGV[1] now
-- ARGV[2] lease key or "" ; ARGV[3] lease token (the publisher's fencing token)
-- ARGV[4] position key or "" ; ARGV[5] position value (e.g. a watcher's resourceVersion)
-- ARGV[6] pod-state hash key or ""
-- ARGV[7] seconds a finished job's ledger entry is kept (0: forever)
-- ARGV[8] number of items; then 6 arguments per item:
--   job_id, state, scheduler_id, payload, pod_state_field, pod_state_value
--   (job_id "" records only the pod state; pod_state_field "" records none;
--    an empty pod_state_value deletes the field)
--
-- Rules, per job (ledger hash podq:job:<job_id>):
--   * the first terminal result (succeeded, failed, lost, revoked) wins and is latched
--     in `terminal_state`; later terminal results are dropped;
--   * pending and running are published at most once each, never after running
--     (for pending) and never after the terminal result;
--   * adopted is published once per old scheduler and sets no latch.
-- A job's terminal result also ends its bookkeeping: it leaves the in-flight set and its
-- scheduler's job set, and its ledger entry expires after the retention.
-- The result goes to the stream of the ledger's current owner (adoption moves it),
-- or to the given scheduler's stream for a job with no ledger entry.
-- Returns one entry id per item, or "" where the item published nothing.
-- A lease token that is not the current one fails the whole call with FENCED.
local now = ARGV[1]
if ARGV[2] ~= '' then
  local holder = redis.call('GET', ARGV[2])
  if holder ~= ARGV[3] then
    return redis.error_reply('FENCED lease ' .. ARGV[2] .. ' is not held by token ' .. ARGV[3])
  end
end

local terminal = {succeeded = true, failed = true, lost = true, revoked = true}
local published = {}
local retention = tonumber(ARGV[7])
local count = tonumber(ARGV[8])

for i = 0, count - 1 do
  local base = 9 + i * 6
  local job_id, state, scheduler_id = ARGV[base], ARGV[base + 1], ARGV[base + 2]
  local payload, field, value = ARGV[base + 3], ARGV[base + 4], ARGV[base + 5]
  local entry = ''
  if job_id ~= '' then
    local job = 'podq:job:' .. job_id
    local latched = redis.call('HGET', job, 'terminal_state')
    local publish = false
    if terminal[state] then
      if not latched then
        publish = true
        redis.call('HSET', job, 'terminal_state', state, 'terminal_at', now, 'updated_at', now)
        redis.call('ZREM', 'podq:inflight', job_id)
        local owner = redis.call('HGET', job, 'scheduler_id')
        if owner then
          redis.call('SREM', 'podq:scheduler:' .. owner .. ':jobs', job_id)
        end
        if retention > 0 then
          redis.call('EXPIRE', job, retention)
        end
        local ledger = redis.call('HGET', job, 'state')
        if ledger and ledger ~= 'revoked' then
          redis.call('HSET', job, 'state', 'terminal')
        end
      end
    elseif state == 'pending' then
      if not latched and redis.call('HSETNX', job, 'published_pending', now) == 1 then
        publish = redis.call('HEXISTS', job, 'published_running') == 0
      end
    elseif state == 'running' then
      publish = not latched and redis.call('HSETNX', job, 'published_running', now) == 1
    elseif state == 'adopted' then
      publish = redis.call('HSETNX', job, 'published_adopted:' .. scheduler_id, now) == 1
    end
    if publish then
      local owner = scheduler_id
      if state ~= 'adopted' then
        owner = redis.call('HGET', job, 'scheduler_id') or scheduler_id
      end
      local stream = 'podq:results:' .. owner
      if redis.call('EXISTS', stream) == 0 then
        redis.call('XGROUP', 'CREATE', stream, 'scheduler', '0', 'MKSTREAM')
        redis.call('SADD', 'podq:schedulers', owner)
      end
      entry = redis.call('XADD', stream, '*', 'record', payload)
      redis.call('HSET', job, 'last_state', state, 'last_entry', entry)
    end
  end
  if ARGV[6] ~= '' and field ~= '' then
    if value == '' then
      redis.call('HDEL', ARGV[6], field)  -- an empty state forgets the pod
    else
      redis.call('HSET', ARGV[6], field, value)
    end
  end
  published[i + 1] = entry
end

if ARGV[4] ~= '' then
  redis.call('SET', ARGV[4], ARGV[5])
end
return published
