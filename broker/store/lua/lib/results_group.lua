-- The one definition of how a scheduler's results stream comes to exist: with its consumer
-- group at id 0 (so nothing published before the scheduler's first read is missed), and the
-- scheduler in the set of known schedulers (which the trimmer, the stats and the reconciler walk).
-- Returns 1 when it created the stream, 0 when the stream was there already.
local function ensure_results_group(stream, schedulers, group, scheduler_id)
  if redis.call('EXISTS', stream) == 1 then
    return 0
  end
  redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
  redis.call('SADD', schedulers, scheduler_id)
  return 1
end
