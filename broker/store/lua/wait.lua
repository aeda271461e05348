-- Put accepted jobs in their schedulers' waiting lines for a cluster's create capacity, in one call.
-- KEYS[1] the cluster's schedulers zset (scheduler -> pass); KEYS[2] the cluster's sequence counter;
-- KEYS[3] the set of clusters; then per job two keys: its hash, its scheduler's line
-- ARGV[1] the cluster's name; then per job three values: job_id, scheduler_id, priority
-- Per job, a compare-and-set: an `accepted` job becomes `waiting` and joins its line as
-- `<seq>:<job_id>` scored by minus its priority (higher first; the sequence keeps equal priorities
-- first come, first out); a job in any other state is left alone. A scheduler that had no line
-- joins the schedulers at the lowest pass among them, so a scheduler saves no credit while away.
-- Returns per job 1 (waiting now) or 0 (left alone).
-- The server's clock, as dispatch_waiting.lua's: a job's waiting_at and dispatched_at order as the calls ran.
local clock = redis.call('TIME')
local now = string.format('%.6f', tonumber(clock[1]) + tonumber(clock[2]) / 1000000)
local lowest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local pass = lowest[2] or '0'
local replies = {}
for i = 0, (#KEYS - 3) / 2 - 1 do
  local job, line = KEYS[4 + 2 * i], KEYS[5 + 2 * i]
  local job_id, scheduler, priority = ARGV[2 + 3 * i], ARGV[3 + 3 * i], tonumber(ARGV[4 + 3 * i])
  if redis.call('HGET', job, 'state') == $(ledger.accepted) then
    local member = string.format('%016d', redis.call('INCR', KEYS[2])) .. ':' .. job_id
    redis.call('HSET', job, 'state', $(ledger.waiting), 'updated_at', now, 'waiting_at', now)
    redis.call('ZADD', line, -priority, member)
    redis.call('ZADD', KEYS[1], 'NX', pass, scheduler)
    replies[i + 1] = 1
  else
    replies[i + 1] = 0
  end
end
redis.call('SADD', KEYS[3], ARGV[1])
return replies
