-- Put a task payload in the delayed set, due `delay` seconds from now (server time).
-- KEYS[1] delayed zset; for a job also KEYS[2] its hash and KEYS[3] the in-flight zset
-- ARGV[1] member (kind prefix + payload); ARGV[2] delay in milliseconds;
-- ARGV[3] job id ("" for a control task); ARGV[4] seconds after it is due before the job may count as orphaned;
-- ARGV[5] "1" when this delay counts toward the job's retry limit (an API error), "0" when it does not
-- (a wait for create capacity, a worker's shutdown)
-- A job's hand-off to the delayed set ends its delivery cleanly: `deliveries` (which the
-- poison guard counts) goes back down by one, and `delays` goes up when the delay counts (`waits` when not).
-- Returns the job's number of counted delays (0 for a control task).
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[1])
if #KEYS == 3 and redis.call('EXISTS', KEYS[2]) == 1 then
  -- The delivery ends here: its lease goes, so the delayed message can claim the job.
  redis.call('HDEL', KEYS[2], 'claim_token', 'claim_until')
  redis.call('ZADD', KEYS[3], (now_ms + tonumber(ARGV[2])) / 1000 + tonumber(ARGV[4]), ARGV[3])
  redis.call('HINCRBY', KEYS[2], 'deliveries', -1)
  if ARGV[5] == '1' then
    return redis.call('HINCRBY', KEYS[2], 'delays', 1)
  end
  redis.call('HINCRBY', KEYS[2], 'waits', 1)
  return tonumber(redis.call('HGET', KEYS[2], 'delays') or '0')
end
return 0
