-- Take chosen jobs out of a cluster's waiting lines and mark them dispatched, in one call.
-- KEYS[1] the cluster's schedulers zset (scheduler -> pass); KEYS[2] the in-flight zset;
-- KEYS[3] the running totals hash; then per scheduler its line; then per candidate its job hash
-- (in the order of ARGV's candidates)
-- ARGV[1] seconds after which a dispatched job with no live delivery counts as orphaned;
-- ARGV[2] the number of schedulers S; then per scheduler: its id, its weight, its number of candidates;
-- then the candidates (line members `<seq>:<job_id>`), scheduler by scheduler.
-- The caller read the candidates from the heads of the lines; they must still be the heads, in
-- order (a job of higher priority may have joined meanwhile, or another dispatcher taken some):
-- else nothing is done and {0} is returned, for the caller to read again. Each candidate leaves its
-- line; if its job is still `waiting` it becomes `dispatched` (it joins the in-flight set, as
-- intake's dispatch does, and counts in the `dispatched` total) and its record is returned;
-- otherwise (revoked meanwhile) it only leaves the line. Each scheduler's pass grows by what it was
-- given over its weight; a scheduler whose line is empty leaves the zset.
-- Returns {1, record...}: the records of the dispatched jobs, in candidate order.
-- The server's clock, as wait.lua's: a job's waiting_at and dispatched_at order as the calls ran.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local stamp = string.format('%.6f', now)
local orphaned_at = now + tonumber(ARGV[1])
local schedulers = tonumber(ARGV[2])
local records = {1}
local arg = 3 + 3 * schedulers
for s = 0, schedulers - 1 do
  local count = tonumber(ARGV[5 + 3 * s])
  local head = {}
  if count > 0 then
    head = redis.call('ZRANGE', KEYS[4 + s], 0, count - 1)
  end
  if #head ~= count then
    return {0}
  end
  for i = 1, count do
    if head[i] ~= ARGV[arg] then
      return {0}
    end
    arg = arg + 1
  end
end
arg = 3 + 3 * schedulers
local job_key = 4 + schedulers
local moved = 0
for s = 0, schedulers - 1 do
  local line = KEYS[4 + s]
  local scheduler, weight, count = ARGV[3 + 3 * s], tonumber(ARGV[4 + 3 * s]), tonumber(ARGV[5 + 3 * s])
  local given = 0
  for _ = 1, count do
    local member = ARGV[arg]
    local job = KEYS[job_key]
    arg = arg + 1
    job_key = job_key + 1
    redis.call('ZREM', line, member)
    local f = redis.call('HMGET', job, 'state', 'job_id', 'job')
    if f[1] == $(ledger.waiting) then
      redis.call('HSET', job, 'state', $(ledger.dispatched), 'updated_at', stamp, 'dispatched_at', stamp)
      redis.call('ZADD', KEYS[2], orphaned_at, f[2])
      records[#records + 1] = f[3]
      given = given + 1
    end
  end
  moved = moved + given
  if redis.call('EXISTS', line) == 0 then
    redis.call('ZREM', KEYS[1], scheduler)
  elseif given > 0 then
    redis.call('ZINCRBY', KEYS[1], given / weight, scheduler)
  end
end
if moved > 0 then
  redis.call('HINCRBY', KEYS[3], $(total.dispatched), moved)
end
return records
